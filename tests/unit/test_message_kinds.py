"""What the host's messages and events say of replies, locations, contact cards, groups, edits,
deletions and reactions, in our terms (``events.kinds``, ``events.host_messages``); and which
reactions are one emoji (``emoji``)."""

from __future__ import annotations

from typing import Any

import pytest

from wa_gateway.emoji import is_emoji
from wa_gateway.event_records import GroupUpdate, Location, MessageChange
from wa_gateway.events.host_messages import inbound_from_event
from wa_gateway.events.kinds import (
    participants_from_event,
    reaction_from_event,
    revoke_from_event,
)
from wa_gateway.events.service import to_record

NAME = "u_test"
ME = "5511900000000@c.us"
ANA = "5511987654321"
GROUP = "120363040000000001@g.us"


def message(**fields: Any) -> dict[str, Any]:
    return {
        "event": "onmessage",
        "id": f"false_{ANA}@c.us_3A01",
        "from": f"{ANA}@c.us",
        "to": ME,
        "type": "chat",
        "body": "oi",
        "t": 1_700_000_000,
        "notifyName": "Ana",
        **fields,
    }


def test_a_reply_names_the_message_it_quotes_and_keeps_the_hosts_time() -> None:
    found = inbound_from_event(NAME, message(quotedMsgId=f"true_{ANA}@c.us_3EB0AA"))
    assert found is not None
    assert found.reply_to_wpp_id == f"true_{ANA}@c.us_3EB0AA"
    assert found.host_t == 1_700_000_000


def test_a_location_keeps_its_place_not_its_thumbnail() -> None:
    found = inbound_from_event(
        NAME,
        message(type="location", body="/9j/4AAQ...", lat=-23.55, lng=-46.63, loc="Sé\nSão Paulo"),
    )
    assert found is not None
    assert found.location == Location(-23.55, -46.63, "Sé\nSão Paulo")
    assert found.body == "Sé\nSão Paulo"


@pytest.mark.parametrize("lat", [None, "x", True, 91])
def test_a_location_without_a_place_on_earth_has_none(lat: object) -> None:
    found = inbound_from_event(NAME, message(type="location", lat=lat, lng=1))
    assert found is not None and found.location is None


def test_contact_cards_keep_their_vcards_and_show_their_names() -> None:
    one = inbound_from_event(
        NAME, message(type="vcard", body="BEGIN:VCARD\nEND:VCARD", vcardFormattedName="Bia")
    )
    many = inbound_from_event(
        NAME,
        message(
            type="multi_vcard",
            body="",
            vcardList=[
                {"displayName": "A", "vcard": "BEGIN:VCARD\nFN:A\nEND:VCARD"},
                {"displayName": "B", "vcard": "BEGIN:VCARD\nFN:B\nEND:VCARD"},
            ],
        ),
    )
    assert one is not None and (one.vcard, one.body) == ("BEGIN:VCARD\nEND:VCARD", "Bia")
    assert many is not None and many.body == "A, B"
    assert many.vcard == "BEGIN:VCARD\nFN:A\nEND:VCARD\nBEGIN:VCARD\nFN:B\nEND:VCARD"


def test_a_group_message_is_the_groups_with_its_author_not_a_contacts() -> None:
    found = inbound_from_event(
        NAME,
        message(
            id=f"false_{GROUP}_3A02_{ANA}@c.us",
            **{"from": GROUP, "chatId": GROUP, "author": f"{ANA}@c.us", "isGroupMsg": True},
        ),
        groups=True,
    )
    by_lid = inbound_from_event(
        NAME,
        message(**{"from": GROUP, "chatId": GROUP, "author": "123456789012345@lid"}),
        groups=True,
    )
    assert found is not None and by_lid is not None
    assert (found.group_id, found.author, found.phone, found.contact_lid) == (
        GROUP,
        ANA,
        None,
        None,
    )
    assert by_lid.author == "123456789012345@lid"
    assert inbound_from_event(NAME, message(**{"from": GROUP, "chatId": GROUP})) is None


def test_a_message_read_back_edited_or_deleted_says_so() -> None:
    edited = inbound_from_event(
        NAME,
        message(
            body="novo",
            latestEditMsgKey={"_serialized": "x"},
            latestEditSenderTimestampMs=1_700_000_100_000,
        ),
    )
    revoked = inbound_from_event(NAME, message(type="revoked", body=""))
    assert edited is not None and edited.edited_ms == 1_700_000_100_000 and edited.body == "novo"
    assert revoked is not None and revoked.revoked and revoked.body == ""


def test_a_contacts_reaction_names_them_by_the_reactions_key() -> None:
    event = {
        "event": "onreactionmessage",
        "id": {"fromMe": False, "remote": f"{ANA}@c.us", "id": "3A09", "_serialized": "k"},
        "msgId": {"_serialized": f"true_{ANA}@c.us_3EB0AA"},
        "reactionText": "👍",
        "timestamp": 1_700_000_000,
    }
    in_group = {
        **event,
        "id": f"false_{GROUP}_3A10_123456789012345@lid",
        "reactionText": "",
        "timestamp": 1_700_000_000_500,
    }
    assert reaction_from_event(NAME, event) == MessageChange(
        NAME,
        f"true_{ANA}@c.us_3EB0AA",
        "reaction",
        f"{ANA}@c.us",
        None,
        "👍",
        ANA,
        None,
        1_700_000_000_000,
    )
    removed = reaction_from_event(NAME, in_group)
    assert removed is not None
    assert (removed.reactor, removed.emoji, removed.contact_lid, removed.at_ms) == (
        "123456789012345@lid",
        "",
        "123456789012345",
        1_700_000_000_500,
    )
    mine = reaction_from_event(NAME, {**event, "id": {"fromMe": True, "remote": f"{ANA}@c.us"}})
    assert mine is not None and mine.reactor == "me"
    assert reaction_from_event(NAME, {**event, "msgId": None}) is None


def test_a_deletion_and_a_participant_change_become_records_of_their_own() -> None:
    revoke = {"event": "onrevokedmessage", "id": "false_x_1", "refId": f"false_{ANA}@c.us_3A01"}
    changed = {
        "event": "onparticipantschanged",
        "groupId": GROUP,
        "action": "leaver",
        "who": [f"{ANA}@c.us", "bogus"],
    }
    assert revoke_from_event(NAME, revoke) == MessageChange(
        NAME, f"false_{ANA}@c.us_3A01", "revoke"
    )
    assert participants_from_event(NAME, changed) == GroupUpdate(
        NAME, GROUP, action="remove", who=(f"{ANA}@c.us",)
    )
    assert to_record(NAME, revoke).kind == "change"
    assert to_record(NAME, changed).kind == "group"
    assert to_record(NAME, {**changed, "action": "fly"}).kind == "none"


@pytest.mark.parametrize(
    "emoji",
    ["👍", "❤️", "❤", "👍🏽", "🇧🇷", "👨‍👩‍👧", "🏳️‍🌈", "🏋🏽‍♀️", "1️⃣", "#⃣", "🏴󠁧󠁢󠁥󠁮󠁧󠁿", "🫠", "©"],
)
def test_one_emoji_is_an_emoji(emoji: str) -> None:
    assert is_emoji(emoji)


@pytest.mark.parametrize(
    "text",
    ["", "ok", "👍👍", "🏽", "🇧", "a👍", "👍 ", "1", "\u200d", "👍\u200d", "👍" + "\u200d👍" * 20],
)
def test_anything_else_is_not(text: str) -> None:
    assert not is_emoji(text)
