"""Who a call comes from: users' access tokens (``tokens``, ``jwks``), the host's webhook
proof (``webhook_proof``), and the verified ``caller`` a request carries on.

Nothing is imported here: each path imports the one module it uses.
"""
