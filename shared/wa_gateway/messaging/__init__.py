"""Sending: a message now (``service``), or with a template or at a time (``send_options``).

Nothing is imported here: each path imports the one module it uses.
"""
