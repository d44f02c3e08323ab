"""The scheduled passes: ``purge``, ``scheduler`` (scheduled messages), ``reconcile`` (the
live sessions, one at a time in ``reconcile_session``), and what they claim and apply
(``records``).

Nothing is imported here: each path imports the one module it uses.
"""
