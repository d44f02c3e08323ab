"""The host's webhook events: classified and applied (``service``), and its message and ack
events in our terms (``host_messages``).

Nothing is imported here: each path imports the one module it uses.
"""
