"""Who a request is from, once their access token has been verified (see ``tokens``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Caller:
    """The verified caller of a request.

    ``user_id`` is the token's ``sub``: a UUID in canonical lower-case form.
    ``claims`` are all verified claims; ``token`` is the raw JWT, to forward to
    PostgREST so row-level security sees the same user. Neither ``claims``
    (which hold e-mail and phone) nor ``token`` appear in ``repr``. A dataclass, not a
    NamedTuple like the records: a tuple would hand both to anything that iterates or
    serialises it (a log line's JSON encoder, say).
    """

    user_id: str
    claims: dict[str, Any] = field(repr=False)
    token: str = field(repr=False)
