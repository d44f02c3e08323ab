"""Linking WhatsApp: start and disconnect (``service``), whose session is whose and the stored
one (``accounts``), the one map from the host's words to our statuses (``transitions``), and QR
codes (``qr``).

Nothing is imported here: each path imports the one module it uses.
"""
