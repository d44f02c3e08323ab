"""The scheduled passes: ``purge``, ``scheduler`` (scheduled messages), ``reconcile`` (the
live sessions, one at a time in ``reconcile_session``, their chats read in ``chat_reader``),
``media`` (received files fetched from their hosts).
What they claim and apply is in ``wa_gateway.pass_records``; their functions' face is
``wa_gateway.job_app``.

Nothing is imported here: each path imports the one module it uses.
"""
