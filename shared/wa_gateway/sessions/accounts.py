"""Whose session is whose: the host session name of each account of a user, and the caller's
session as stored. Nothing of the host is needed for either, so status reads load none of it."""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

from wa_gateway.validation import DEFAULT_ACCOUNT

if TYPE_CHECKING:
    from wa_gateway.auth.caller import Caller
    from wa_gateway.records import SessionRecord
    from wa_gateway.store import Store


def session_name_for(user_id: str, account: str = DEFAULT_ACCOUNT) -> str:
    """The host session name of a user's account: ``u`` and the user's uuid in lowercase
    base32 (27 characters) for the default account, plus ``_`` and a digest of the label for
    another (38). The host's token is bcrypt(name + secret key), and bcrypt reads only the
    first 72 bytes: a name of at most 40 bytes leaves at least 32 bytes of the secret in them.
    """
    name = "u" + _base32(bytes.fromhex(user_id.replace("-", "")))
    if account == DEFAULT_ACCOUNT:
        return name
    return f"{name}_{_base32(hashlib.sha256(account.encode()).digest())[:10]}"


def _base32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def stored_session(
    store: Store, caller: Caller, account: str = DEFAULT_ACCOUNT
) -> SessionRecord | None:
    """The caller's session as stored, read under their identity."""
    return store.get_session(caller, session_name_for(caller.user_id, account))
