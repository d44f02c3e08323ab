"""API keys: a user's own backend calls the functions with ``Authorization: Bearer wak_...``.

* ``api_key``: what a key is (``wak_`` and 32 random bytes in base64url), its digest and prefix;
* ``callers``: the caller of a key's request, its owner learnt once per container;
* ``gate``: the store's transport for a key's request, which checks the key in the round trip
  each call makes anyway (``gateway_keyed_call``);
* ``service``: the api-keys function's use cases (make, list, revoke).

Imported only when a request carries a key or manages keys: a browser's request with its
token never loads this package.
"""
