"""Who a request is from, once their access token (see ``tokens``) or API key (see
``wa_gateway.keys``) has been checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

API_KEY_PREFIX = "wak_"
"""How an API key begins, told apart from a JWT by it (the rest is ``wa_gateway.keys``)."""


@dataclass(frozen=True)
class Caller:
    """The verified caller of a request.

    ``user_id`` is the token's ``sub``: a UUID in canonical lower-case form.
    ``claims`` are all verified claims; ``token`` is the raw JWT, to forward to
    PostgREST so row-level security sees the same user. Neither ``claims``
    (which hold e-mail and phone) nor ``token`` appear in ``repr``. A dataclass, not a
    NamedTuple like the records: a tuple would hand both to anything that iterates or
    serialises it (a log line's JSON encoder, say).

    ``api_key`` is the SHA-256 (hex) of the API key a request came with, None for a token: the
    store then makes every call of the request through the key's check
    (``wa_gateway.keys.gate``), and ``token`` is empty.
    """

    user_id: str
    claims: dict[str, Any] = field(repr=False)
    token: str = field(repr=False)
    api_key: str | None = field(default=None, repr=False)
