"""Sending to a group the account is in, and nothing else.

The host sends to any group id it is given and fails only inside WhatsApp Web, after the
outbox row is written; so a send to a group is checked first. The group's participants kept in
``whatsapp_groups`` answer when they were read from the host in the last ``FRESH_S`` and name
the account; otherwise the host is asked (``group-info``) and its answer kept. A group the
account was never in, or has left, is ``404 group_not_found``, with nothing stored or sent.

The account is found among the participants by its own number (a Brazilian mobile with or
without its ninth digit). A group whose participants WhatsApp names by LID only cannot show
the account's number: it is taken as one the account is in, and the host has the last word.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from wa_gateway.auth.caller import Caller
from wa_gateway.errors import GroupNotFound, SessionNotConnected
from wa_gateway.event_records import GroupParticipant, GroupUpdate
from wa_gateway.events.host_messages import digits_of
from wa_gateway.messaging.host_calls import HostParts, host_session
from wa_gateway.records import SessionUpdate
from wa_gateway.send_records import GroupRecord

FRESH_S = 600
_BR_MOBILE = re.compile(r"^55[1-9][0-9]9[0-9]{8}$")


def _number_key(digits: str) -> str:
    """One key for the numbers WhatsApp treats as one (a Brazilian mobile's ninth digit)."""
    return digits[:4] + digits[5:] if _BR_MOBILE.match(digits) else digits


def is_member(participants: Sequence[Mapping[str, Any]], own_phone: str | None) -> bool:
    """Whether the account (its number ``own_phone``) is among ``participants``."""
    ids = [p["id"] for p in participants if isinstance(p.get("id"), str)]
    if not ids:
        return False
    if own_phone is None:
        return True  # the account's number is not known yet: the host decides
    own = _number_key(own_phone)
    numbers = {_number_key(i.split("@")[0]) for i in ids if i.endswith("@c.us")}
    return own in numbers or any(i.endswith("@lid") for i in ids)


def _fresh(group: GroupRecord | None) -> bool:
    if group is None or group.participants is None or group.participants_at is None:
        return False
    read = datetime.fromisoformat(group.participants_at)
    return datetime.now(UTC) - read < timedelta(seconds=FRESH_S)


def participants_of(info: Mapping[str, Any]) -> tuple[GroupParticipant, ...]:
    """The participants of a ``group-info`` answer."""
    from wa_gateway.events.kinds import person

    found = []
    for item in info.get("participants") or ():
        if isinstance(item, Mapping):
            who = person(item.get("id"))
            if who is not None:
                found.append(GroupParticipant(who, bool(item.get("isAdmin"))))
    return tuple(found)


def ensure_member(parts: HostParts, caller: Caller, name: str, group: str) -> None:
    """Return if the account of session ``name`` is in ``group``, else raise GroupNotFound
    (SessionNotConnected when the host must be asked and the session is not connected)."""
    kept, own = parts.store.group_of(name, group)
    if _fresh(kept) and kept is not None and is_member(kept.participants or (), own):
        return
    on_host = parts.store.session_for_host(user_id=caller.user_id, session_name=name)
    if on_host is None:
        raise SessionNotConnected()
    with host_session(parts, name, on_host.host_token, on_host.host) as host:
        asked = host.call_if_connected(
            lambda token: (
                host.host.group_info(name, token, group),
                None if own else host.host.own_number(name, token),
            )
        )
    if asked is None:
        raise SessionNotConnected()
    info, wid = asked
    if own is None and wid is not None:
        # The account's number, not known until a message names it: kept now.
        own = digits_of(wid)
        parts.store.apply_host_state(SessionUpdate(name, "connected", phone_number=own))
    participants = participants_of(info)
    member = is_member([p._asdict() for p in participants], own)
    if member or kept is not None:
        # Kept: a group the account is in, or one it was in (now left); never one it is not in.
        subject = info.get("subject")
        parts.store.record_group(
            GroupUpdate(
                session_name=name,
                group_id=group,
                subject=subject if isinstance(subject, str) and subject else None,
                participants=participants,
            )
        )
    if not member:
        raise GroupNotFound()
