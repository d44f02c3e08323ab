"""The api-keys function's keys: make one (shown once), list them, revoke one."""

from __future__ import annotations

from typing import Any, NamedTuple

from wa_gateway.errors import InvalidRequest, LimitReached
from wa_gateway.keys import api_key
from wa_gateway.records import KeyToCreate
from wa_gateway.store.sql_records import sql_record
from wa_gateway.store.transport import Transport
from wa_gateway.validation import is_plain_text, parse_choices, reject_unknown_fields

SCOPES = ("send", "read", "sessions")
"""What a key may do: send (send-message), read (status), sessions (start-session,
disconnect)."""
MAX_NAME = 64


class NewKey(NamedTuple):
    name: str
    scopes: list[str]


def parse_new_key(body: dict[str, Any]) -> NewKey:
    reject_unknown_fields(body, {"name", "scopes"})
    name = body.get("name")
    if (
        not isinstance(name, str)
        or not name.strip()
        or len(name) > MAX_NAME
        or not is_plain_text(name)
    ):
        raise InvalidRequest(f"'name' must be 1 to {MAX_NAME} characters of text.")
    return NewKey(name, parse_choices(body.get("scopes"), "scopes", SCOPES))


class ApiKeys:
    """A user's keys, through the SQL functions of the api_keys migration."""

    def __init__(self, transport: Transport, *, max_keys: int) -> None:
        self.transport = transport
        self.max_keys = max_keys

    def create(self, user_id: str, request: NewKey) -> dict[str, Any]:
        """The new key as listed, with ``secret``: the key itself, which nothing keeps."""
        key = api_key.new_key()
        record = KeyToCreate(
            user_id=user_id,
            name=request.name,
            prefix=api_key.prefix(key),
            key_hash=api_key.digest(key),
            scopes=tuple(request.scopes),
            max_keys=self.max_keys,
        )
        result = self.transport.rpc(
            "gateway_create_api_key",
            {"p_key": sql_record(record)},
            repeatable=False,  # a second call would make a second key
        )
        if result["outcome"] == "limit":
            raise LimitReached(f"You have {self.max_keys} API keys, the most allowed. Revoke one.")
        return {**result["key"], "secret": key}

    def owned(self, user_id: str) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = self.transport.rpc(
            "gateway_api_keys", {"p_record": {"user_id": user_id}}
        )
        return keys

    def revoke(self, user_id: str, key_id: str) -> dict[str, Any] | None:
        """The key as it was, now deleted; None if the user has no such key."""
        key: dict[str, Any] | None = self.transport.rpc(
            "gateway_revoke_api_key", {"p_record": {"user_id": user_id, "id": key_id}}
        )
        return key
