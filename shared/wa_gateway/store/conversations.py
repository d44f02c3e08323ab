"""The store's calls for conversations: groups, and send-message's react, edit, delete and
read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wa_gateway.records import MessageRecord
from wa_gateway.send_records import ActionPlan, ChatRecord, GroupRecord, MessageAction
from wa_gateway.store.sql_records import sql_record
from wa_gateway.store.transport import Transport

if TYPE_CHECKING:  # the webhook's records: the webhook imports them
    from wa_gateway.event_records import GroupUpdate


def _group(result: Any) -> tuple[GroupRecord | None, str | None]:
    if result is None:
        return None, None
    group = result.get("group")
    return (GroupRecord.from_row(group) if group else None), result.get("phone_number")


class ConversationCalls:
    """The part of :class:`wa_gateway.store.Store` for conversations."""

    transport: Transport
    _governor: dict[str, float]

    def group_of(self, session_name: str, group_id: str) -> tuple[GroupRecord | None, str | None]:
        """The session's group as last kept (None: unknown), with the account's own number."""
        return _group(
            self.transport.rpc(
                "gateway_group_of", {"p_session_name": session_name, "p_group_id": group_id}
            )
        )

    def record_group(self, update: GroupUpdate) -> tuple[GroupRecord | None, str | None]:
        """Keep what the host said of a group; the group as it is now, with the account's own
        number (None, None: no such session)."""
        return _group(self.transport.rpc("gateway_record_group", {"p_group": sql_record(update)}))

    def begin_action(self, action: MessageAction) -> ActionPlan:
        """Decide a react, edit, delete or read before the host is asked."""
        result = self.transport.rpc(
            "gateway_begin_action",
            {
                "p_action": sql_record(action),
                "p_burst": self._governor["p_burst"],
                "p_rate_per_s": self._governor["p_rate_per_s"],
            },
        )
        return ActionPlan.from_json(result)

    def finish_action(
        self, action: MessageAction
    ) -> tuple[MessageRecord | None, ChatRecord | None, int]:
        """Record what the host did: (the message now, the chat now, messages marked read)."""
        result = self.transport.rpc("gateway_finish_action", {"p_action": sql_record(action)})
        message, chat = result.get("message"), result.get("chat")
        return (
            MessageRecord.from_row(message) if message else None,
            ChatRecord.from_row(chat) if chat else None,
            int(result.get("marked") or 0),
        )
