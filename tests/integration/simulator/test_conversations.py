"""The simulator's conversation routes and events, as wppconnect-server 2.10.4 answers and posts
them: replies, reactions, edits, deletions, read marks, groups and their participants, and a
contact's reaction, edit and deletion. Over real HTTP against the simulator as its own process
(see ``local/simulator/kinds.py``)."""

from __future__ import annotations

import time
from typing import Any

from tests.integration.simulator.host_client import Host, Receiver

ANA = "5511987650003"


def incoming(host: Host, session: str, **spec: Any) -> dict[str, Any]:
    answer = host.sim("POST", f"{session}/incoming", spec)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def sent(host: Host, session: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = host.call("POST", session, "send-message", body)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()["response"][0]
    return result


def one_each_way(
    host: Host, session: str, receiver: Receiver, mine: str, theirs: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Link the session, send Ana ``mine`` and have her write ``theirs``: both messages."""
    host.connect(session, receiver)
    return (
        sent(host, session, {"phone": ANA, "message": mine}),
        incoming(host, session, **{"from": ANA, "body": theirs}),
    )


def test_a_reply_quotes_and_a_reaction_is_posted_for_the_account_and_a_contact(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver)
    question = incoming(host, name, **{"from": ANA, "body": "pode?"})
    reply = sent(
        host, name, {"phone": ANA, "message": "sim", "options": {"quotedMsg": question["id"]}}
    )
    reacted = host.call("POST", name, "react-message", {"msgId": question["id"], "reaction": "👍"})
    theirs = incoming(host, name, reaction={"id": reply["id"], "emoji": "❤️"})
    listed = host.call("GET", name, f"reactions/{reply['id']}")

    assert reply["quotedMsgId"] == question["id"]
    assert reacted.status_code == 200
    assert reacted.json()["response"] == {"message": "Reaction sended"}
    posted = [h.body for h in receiver.wait_for(name, "onreactionmessage", count=2)]
    mine = next(p for p in posted if p["id"]["fromMe"])
    assert (mine["msgId"]["_serialized"], mine["reactionText"]) == (question["id"], "👍")
    assert theirs["event"]["id"]["fromMe"] is False and theirs["event"]["reactionText"] == "❤️"
    [by_emoji] = listed.json()["response"]["reactions"]
    assert by_emoji["aggregateEmoji"] == "❤️" and by_emoji["senders"][0]["reactionText"] == "❤️"


def test_only_the_accounts_own_text_is_edited_and_no_event_follows(
    host: Host, name: str, receiver: Receiver
) -> None:
    mine, theirs = one_each_way(host, name, receiver, "oi", "olá")

    edited = host.call("POST", name, "edit-message", {"id": mine["id"], "newText": "oi!"})
    refused = host.call("POST", name, "edit-message", {"id": theirs["id"], "newText": "x"})
    incoming(host, name, edit={"id": theirs["id"], "body": "olá, editado"})
    back = host.call("GET", name, f"message-by-id/{theirs['id']}").json()["response"]["data"]

    assert edited.status_code == 201 and edited.json()["response"]["body"] == "oi!"
    assert edited.json()["response"]["latestEditMsgKey"]["_serialized"]
    assert refused.status_code == 500
    assert back["body"] == "olá, editado" and back["latestEditSenderTimestampMs"] > 0
    host.wait_delivered(name)
    assert "onmessageedit" not in {e for e, _ in host.emitted(name)}


def test_delete_for_everyone_revokes_ones_own_answers_twice_and_a_contacts_is_posted(
    host: Host, name: str, receiver: Receiver
) -> None:
    mine, theirs = one_each_way(host, name, receiver, "apaga", "também")

    deleted = host.call(
        "POST", name, "delete-message", {"phone": ANA, "messageId": mine["id"], "onlyLocal": False}
    )
    incoming(host, name, revoke={"id": theirs["id"]})

    assert deleted.status_code == 200
    assert deleted.json()["response"] == {"message": "Message deleted"}
    assert host.sim("GET", "host").json()["unhandledRejections"] >= 1
    [posted] = [h.body for h in receiver.wait_for(name, "onrevokedmessage")]
    assert posted["refId"] == theirs["id"]
    back = host.call("GET", name, f"message-by-id/{mine['id']}").json()["response"]["data"]
    assert back["type"] == "revoked"
    actions = host.sim("GET", f"{name}/actions").json()["actions"]
    assert actions == [
        {"route": "delete-message", "id": mine["id"], "chat": f"{ANA}@c.us", "revoked": True}
    ]


def test_send_seen_marks_the_chat_read_with_acks_of_its_messages(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver, read_message=False, incoming_acks=True)
    incoming(host, name, **{"from": ANA, "body": "um"})
    incoming(host, name, **{"from": ANA, "body": "dois"})

    seen = host.call("POST", name, "send-seen", {"phone": ANA})

    assert seen.status_code == 201 and seen.json()["response"]["contact"] == [f"{ANA}@c.us"]
    acks = receiver.wait_for(name, "onack", count=2)
    assert {h.body["ack"] for h in acks} == {3}
    assert host.call("GET", name, "all-unread-messages").json()["response"] == []


def test_groups_answer_their_info_take_sends_only_from_members_and_post_participant_changes(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver)
    group = host.sim("POST", f"{name}/group", {"subject": "Equipe", "participants": [ANA]}).json()
    other = host.sim(
        "POST", f"{name}/group", {"subject": "Fora", "participants": [ANA], "member": False}
    ).json()
    gid, outside = group["group"]["id"], other["group"]["id"]

    info = host.call("GET", name, f"group-info/{gid}").json()["response"]
    unknown = host.call("GET", name, "group-info/120363000000000999@g.us").json()["response"]
    to_group = host.call(
        "POST", name, "send-message", {"phone": gid, "isGroup": True, "message": "oi"}
    )
    not_in = host.call(
        "POST", name, "send-message", {"phone": outside, "isGroup": True, "message": "oi"}
    )
    changed = host.sim(
        "POST", f"{name}/participants", {"group": gid, "action": "remove", "who": [ANA]}
    )
    own = host.call("GET", name, "get-phone-number").json()["response"]

    assert info["subject"] == "Equipe"
    assert {p["id"] for p in info["participants"]} == {f"{ANA}@c.us", own}
    assert (unknown["subject"], unknown["participants"]) == ("", [])
    assert to_group.status_code == 201 and to_group.json()["response"][0]["to"] == gid
    assert not_in.status_code == 500
    assert changed.status_code == 200
    [posted] = [h.body for h in receiver.wait_for(name, "onparticipantschanged")]
    assert (posted["groupId"], posted["action"], posted["who"]) == (gid, "remove", [f"{ANA}@c.us"])
    after = host.call("GET", name, f"group-info/{gid}").json()["response"]["participants"]
    assert [p["id"] for p in after] == [own]


def test_incoming_locations_cards_and_group_messages_carry_what_the_library_serializes(
    host: Host, name: str, receiver: Receiver
) -> None:
    host.connect(name, receiver)
    place = incoming(
        host, name, **{"from": ANA, "location": {"lat": 1.5, "lng": -2.5, "name": "Casa"}}
    )
    card = incoming(
        host, name, **{"from": ANA, "vcard": "BEGIN:VCARD\nEND:VCARD", "vcard_name": "Bia"}
    )
    grouped = incoming(host, name, **{"from": ANA, "group": True, "body": "oi grupo"})
    started = time.time()

    assert (place["message"]["type"], place["message"]["lat"], place["message"]["loc"]) == (
        "location",
        1.5,
        "Casa",
    )
    assert card["message"]["type"] == "vcard" and card["message"]["vcardFormattedName"] == "Bia"
    message = grouped["message"]
    assert message["chatId"].endswith("@g.us") and message["author"] == f"{ANA}@c.us"
    assert message["isGroupMsg"] is True and started - message["t"] < 60
