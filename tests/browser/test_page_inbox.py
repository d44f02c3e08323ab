"""The inbox in a real headless Chromium, at desktop width and at a phone's (390 px), against
the real local stack: conversations with unread counts, search, a reply (by the menu on a
desktop, by a swipe on a phone), a reaction, an edit and a deletion of one's own message, every
kind a contact can send (reply, reaction, edit, deletion, location, contact card, a group
message), a send to a group, and unread counts going to zero once a conversation is read.
Screenshots of each step go to ``.local/test-output/browser/inbox-<width>/``."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.browser.test_demo_page import DESKTOP, PHONE, WAIT_MS, a_page, chromium, show, sign_in
from tests.browser.test_page_templates_schedules_reports import nudge, sends
from tests.conftest import Gateway, Simulator
from tests.e2e.flows import connected_user
from tests.waiting import wait_until

ANA = "5511987650011"
BRUNO = "5511987650012"
VCARD = "BEGIN:VCARD\nVERSION:3.0\nFN:Carla Dias\nTEL;type=CELL:+5511912340000\nEND:VCARD"


@pytest.fixture()
def browser_context(tmp_path: Path) -> Iterator[BrowserContext]:
    with chromium(tmp_path / "profile") as context:
        yield context


def incoming(simulator: Simulator, name: str, **spec: Any) -> str:
    """A contact's message (or reaction, edit, deletion); the host's id of it."""
    answer: dict[str, Any] = simulator.control("POST", f"{name}/incoming", spec).json()
    return str(answer.get("id", ""))


def stored(database: str, wpp_message_id: str) -> bool:
    """Whether the gateway has stored the message the host knows by this id."""
    with psycopg.connect(database) as conn:
        found = conn.execute(
            "select 1 from whatsapp_messages where wpp_message_id = %s", (wpp_message_id,)
        ).fetchone()
    return found is not None


def chat_item(page: Page, chat_id: str) -> Locator:
    return page.locator(f'#conversations [data-chat="{chat_id}"]')


def to_list(page: Page, phone: bool) -> None:
    """On a phone the list and the conversation are two screens: back to the list."""
    if phone and page.locator("#chat-pane").is_visible():
        page.click("#chat-back")
    expect(page.locator("#conversations")).to_be_visible()


def open_menu(page: Page, message: Locator) -> Locator:
    """The message's actions, opened with its menu button."""
    message.locator(".message-more").click()
    actions = message.locator(".message-actions")
    expect(actions).to_be_visible()
    return actions


def swipe_right(page: Page, message: Locator) -> None:
    """A finger dragging the message to the right, as the page's pointer events see it."""
    message.evaluate(
        """(item) => {
            const box = item.getBoundingClientRect();
            const y = box.top + box.height / 2;
            const at = (type, x) => item.dispatchEvent(new PointerEvent(type, {
                bubbles: true, pointerType: "touch", isPrimary: true, clientX: x, clientY: y,
            }));
            at("pointerdown", box.left + 10);
            at("pointermove", box.left + 50);
            at("pointermove", box.left + 90);
            at("pointerup", box.left + 90);
        }"""
    )


def small_targets(page: Page) -> list[str]:
    """The visible buttons and fields a finger can't hit well: under 44 px high or wide (a
    link inside a sentence is exempt, as WCAG's target size has it)."""
    small: list[str] = page.evaluate(
        """() => [...document.querySelectorAll("button, input, select, textarea, summary")]
            .filter((e) => e.offsetParent !== null && e.type !== "checkbox")
            .filter((e) => {
                const box = e.getBoundingClientRect();
                return box.height < 43.5 || box.width < 43.5;
            })
            .map((e) => `${e.id || e.className || e.tagName} ${e.offsetHeight}`)"""
    )
    return small


def wrapped_times(page: Page) -> list[str]:
    """Message times broken over two lines."""
    wrapped: list[str] = page.locator("#messages .message-time").evaluate_all(
        """(times) => times
            .filter((t) => {
                const line = parseFloat(getComputedStyle(t).fontSize) * 1.45;
                return t.getBoundingClientRect().height > 1.6 * line;
            })
            .map((t) => t.textContent)"""
    )
    return wrapped


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_the_inbox_reads_writes_and_follows_conversations(
    browser_context: BrowserContext,
    gateway: Gateway,
    simulator: Simulator,
    output_dir: Path,
    database: str,
    width: str,
) -> None:
    phone = width == "phone"
    user, token, name = connected_user(gateway, simulator, f"inbox-{width}")
    page, steps = a_page(browser_context, output_dir / "browser" / f"inbox-{width}")
    page.set_viewport_size(PHONE if phone else DESKTOP)
    bodies = sends(page)
    ana_chat, bruno_chat = f"{ANA}@c.us", f"{BRUNO}@c.us"
    messages = page.locator("#messages li.message")
    ids: dict[str, str] = {}

    def inbox() -> None:
        ids["lunch"] = incoming(
            simulator,
            name,
            **{"from": ANA, "body": "Vamos almoçar amanhã?", "notifyName": "Ana Souza"},
        )
        time.sleep(1.1)  # WhatsApp's times are in seconds: Bruno's is the newer chat
        incoming(simulator, name, **{"from": BRUNO, "body": "Bom dia", "notifyName": "Bruno"})
        time.sleep(1.1)
        incoming(simulator, name, **{"from": BRUNO, "body": "Tudo certo?", "notifyName": "Bruno"})
        page.goto(f"{gateway.url}/")
        sign_in(page, user.email)
        # Linked: the page opens on the chats, newest first, with their unread counts.
        expect(page.locator("#nav-chats")).to_have_attribute("aria-current", "page")
        expect(page.locator("#conversations li")).to_have_count(2)
        expect(chat_item(page, bruno_chat)).to_have_attribute("data-unread", "2")
        expect(chat_item(page, ana_chat)).to_have_attribute("data-unread", "1")
        expect(page.locator("#conversations .conversation-name")).to_have_text(
            ["Bruno", "Ana Souza"]
        )
        expect(chat_item(page, bruno_chat).locator(".conversation-last")).to_have_text(
            "Tudo certo?"
        )
        if phone:
            expect(page.locator("#chat-pane")).to_be_hidden()
        # The list is one tab stop; the arrows move between conversations.
        page.focus("#search")
        page.keyboard.press("Tab")
        expect(chat_item(page, bruno_chat)).to_be_focused()
        page.keyboard.press("ArrowDown")
        expect(chat_item(page, ana_chat)).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.locator("#conversations button:focus")).to_have_count(0)
        page.keyboard.press("Shift+Tab")
        expect(chat_item(page, ana_chat)).to_be_focused()
        page.keyboard.press("Home")
        expect(chat_item(page, bruno_chat)).to_be_focused()

    steps.run("inbox", inbox)

    def found_by_search() -> None:
        page.fill("#search", "almoçar")
        found = page.locator("#search-messages button")
        expect(found).to_have_count(1)
        expect(found).to_contain_text("Ana Souza")
        expect(page.locator("#conversations li")).to_have_count(0)  # no chat of that name
        found.click()
        expect(page.locator("#chat-title")).to_have_text("Ana Souza")
        lunch = messages.filter(has_text="Vamos almoçar amanhã?")
        expect(lunch).to_have_count(1)
        ids["lunch_row"] = lunch.get_attribute("data-id") or ""
        if phone:
            expect(page.locator("#list-pane")).to_be_hidden()
        # Opened and looked at: read, on the host too.
        to_list(page, phone)
        page.fill("#search", "")
        expect(chat_item(page, ana_chat)).to_have_attribute("data-unread", "0")
        actions = simulator.control("GET", f"{name}/actions").json()["actions"]
        assert {"route": "send-seen", "chat": ana_chat} in actions
        chat_item(page, ana_chat).click()
        expect(page.locator("#chat-title")).to_have_text("Ana Souza")

    steps.run("found-by-search", found_by_search)

    def lunch() -> Locator:
        return page.locator(f'#messages li[data-id="{ids["lunch_row"]}"]')

    def replied() -> None:
        lunch = messages.filter(has_text="Vamos almoçar amanhã?")
        if phone:
            swipe_right(page, lunch)
        else:
            open_menu(page, lunch).get_by_role("button", name="Reply").click()
        expect(page.locator("#composer-context")).to_contain_text("Replying to Ana Souza")
        expect(page.locator("#send-text")).to_be_focused()
        page.keyboard.type("Sim! Ao meio-dia")
        page.keyboard.press("Shift+Enter")  # a new line, not a send
        page.keyboard.type("no lugar de sempre")
        assert bodies == []
        page.keyboard.press("Enter")
        mine = messages.filter(has_text="no lugar de sempre")
        expect(mine).to_have_count(1)
        expect(mine.locator(".message-quote")).to_contain_text("Vamos almoçar amanhã?")
        expect(page.locator("#composer-context")).to_be_hidden()
        assert bodies[-1]["message"] == "Sim! Ao meio-dia\nno lugar de sempre"
        assert bodies[-1]["phone"] == ANA and bodies[-1]["reply_to"]
        [sent] = simulator.outbox(name)
        ids["mine"] = sent["id"]

    steps.run("replied", replied)

    def reacted() -> None:
        open_menu(page, lunch()).get_by_role("button", name="React with thumbs up").click()
        expect(lunch().locator(".reaction.mine")).to_have_text("👍")
        actions = simulator.control("GET", f"{name}/actions").json()["actions"]
        assert [a["route"] for a in actions if a["route"] != "send-seen"] == ["react-message"]

    steps.run("reacted", reacted)

    def edited() -> None:
        mine = messages.filter(has_text="no lugar de sempre")
        expect(mine).to_have_attribute("data-status", re.compile("^(sent|delivered|read)$"))
        open_menu(page, mine).get_by_role("button", name="Edit").click()
        expect(page.locator("#composer-context")).to_contain_text("Editing your message")
        expect(page.locator("#send-text")).to_have_value("Sim! Ao meio-dia\nno lugar de sempre")
        page.fill("#send-text", "Sim! À uma, no lugar de sempre")
        page.keyboard.press("Enter")
        changed = messages.filter(has_text="À uma, no lugar de sempre")
        expect(changed.locator(".message-edited")).to_have_text("Edited")
        expect(page.locator("#send-text")).to_have_value("")

    steps.run("edited", edited)

    def deleted() -> None:
        mine = messages.filter(has_text="À uma, no lugar de sempre")
        mine_id = mine.get_attribute("data-id")
        open_menu(page, mine).get_by_role("button", name="Delete for everyone").click()
        expect(page.locator("#confirm-text")).to_contain_text("Delete this message for everyone")
        page.click("#confirm-yes")
        gone = page.locator(f'#messages li[data-id="{mine_id}"]')
        expect(gone.locator(".message-deleted")).to_have_text("You deleted this message")
        routes = [a["route"] for a in simulator.control("GET", f"{name}/actions").json()["actions"]]
        assert routes.count("edit-message") == 1 and routes.count("delete-message") == 1

    steps.run("deleted", deleted)

    def each_kind_received() -> None:
        answer = incoming(
            simulator, name, **{"from": ANA, "body": "Combinado", "quoted": ids["lunch"]}
        )
        incoming(simulator, name, **{"from": ANA, "reaction": {"id": ids["mine"], "emoji": "❤️"}})
        place = {"lat": -23.5614, "lng": -46.6559, "name": "Avenida Paulista"}
        incoming(simulator, name, **{"from": ANA, "location": place})
        card = incoming(
            simulator, name, **{"from": ANA, "vcard": VCARD, "vcard_name": "Carla Dias"}
        )
        # The page reads once when nudged: by then the host's webhooks of all four are in.
        wait_until(lambda: stored(database, card), message="the contact card stored")
        nudge(page)
        reply = messages.filter(has=page.locator(".message-body", has_text="Combinado"))
        expect(reply.locator(".message-quote")).to_contain_text(
            "Vamos almoçar amanhã?", timeout=3 * WAIT_MS
        )
        expect(page.locator('#messages li[data-id] .reaction:text("❤️")')).to_have_count(1)
        expect(page.locator(".message-location")).to_contain_text("Avenida Paulista")
        expect(page.locator(".message-location a")).to_have_attribute(
            "href", re.compile(r"^https://www\.openstreetmap\.org/\?mlat=-23\.5614&mlon=-46\.6559")
        )
        expect(page.locator(".message-contact")).to_contain_text("Carla Dias")
        expect(page.locator(".message-contact")).to_contain_text("+5511912340000")
        # An edit comes only through reconcile (the host posts none): a status refresh.
        incoming(simulator, name, **{"from": ANA, "edit": {"id": answer, "body": "Combinado!!"}})
        refreshed = gateway.call("GET", "status", token, params={"refresh": "true"})
        assert refreshed.status_code == 200, refreshed.text
        nudge(page)
        again = messages.filter(has_text="Combinado!!")
        expect(again.locator(".message-edited")).to_have_text("Edited", timeout=3 * WAIT_MS)
        incoming(simulator, name, **{"from": ANA, "revoke": {"id": ids["lunch"]}})
        nudge(page)
        expect(lunch().locator(".message-deleted")).to_have_text(
            "This message was deleted", timeout=3 * WAIT_MS
        )
        expect(lunch()).not_to_contain_text("Vamos almoçar")
        # The replies quoting it say so too.
        expect(reply.locator(".message-quote")).to_contain_text("This message was deleted")

    steps.run("each-kind-received", each_kind_received)

    def group_message() -> None:
        group = simulator.control(
            "POST",
            f"{name}/group",
            {"subject": "Família", "participants": [ANA, BRUNO]},
        ).json()["group"]
        ids["group"] = group["id"]
        incoming(
            simulator,
            name,
            **{"from": BRUNO, "group": group["id"], "body": "Oi, grupo!", "notifyName": "Bruno"},
        )
        # The group's subject comes from the host's chat list, which reconcile reads.
        refreshed = gateway.call("GET", "status", token, params={"refresh": "true"})
        assert refreshed.status_code == 200, refreshed.text
        to_list(page, phone)
        nudge(page)
        item = chat_item(page, group["id"])
        expect(item.locator(".conversation-name")).to_have_text("Família", timeout=3 * WAIT_MS)
        expect(item).to_have_attribute("data-unread", "1")
        item.click()
        said = messages.filter(has_text="Oi, grupo!")
        expect(said.locator(".message-author")).to_have_text("Bruno")
        expect(page.locator("#chat-sub")).to_contain_text("Bruno")
        expect(item).to_have_attribute("data-unread", "0")

    steps.run("group-message", group_message)

    def sent_to_group() -> None:
        page.fill("#send-text", "Olá a todos")
        page.keyboard.press("Enter")
        mine = messages.filter(has_text="Olá a todos")
        expect(mine).to_have_attribute("data-status", re.compile("^(sent|delivered|read)$"))
        assert bodies[-1] == {"group": ids["group"], "message": "Olá a todos"}
        assert simulator.outbox(name)[-1]["to"] == ids["group"]
        # The send made the gateway read the group's participants: named where known.
        nudge(page)
        expect(page.locator("#chat-sub")).to_have_text(
            re.compile(r"^\d+ participants: .*(Ana Souza.*Bruno|Bruno.*Ana Souza)"),
            timeout=3 * WAIT_MS,
        )
        assert wrapped_times(page) == []
        assert small_targets(page) == []

    steps.run("sent-to-group", sent_to_group)

    def failure_in_words() -> None:
        # A message that failed after it was accepted (here: its account was removed before
        # it went out) says why, in words, never only "Failed" or the code.
        mine = messages.filter(has_text="Olá a todos")
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(
                "update whatsapp_messages set status = 'failed', error_code = 'account_removed',"
                " updated_at = now() where id = %s",
                (mine.get_attribute("data-id"),),
            )
        nudge(page)
        expect(mine.locator(".message-status")).to_have_text(
            "Not sent: the WhatsApp number was unlinked before it went out.",
            timeout=3 * WAIT_MS,
        )
        # The report says it in words too, never the code.
        show(page, "settings")
        expect(page.locator("#report-failures li")).to_have_text(
            ["The WhatsApp number was unlinked before it went out: 1"]
        )
        show(page, "chats")
        expect(mine).to_be_visible()

    steps.run("failure-in-words", failure_in_words)

    def all_read() -> None:
        to_list(page, phone)
        expect(chat_item(page, bruno_chat)).to_have_attribute("data-unread", "2")
        chat_item(page, bruno_chat).click()
        expect(messages.filter(has_text="Tudo certo?")).to_have_count(1)
        to_list(page, phone)
        for chat in (ana_chat, bruno_chat, ids["group"]):
            expect(chat_item(page, chat)).to_have_attribute("data-unread", "0")
        expect(page.locator("#conversations .unread")).to_have_count(0)
        assert small_targets(page) == []
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px"

    steps.run("all-read", all_read)


def test_older_messages_come_in_as_the_conversation_scrolls_up(
    browser_context: BrowserContext,
    gateway: Gateway,
    simulator: Simulator,
    output_dir: Path,
    database: str,
) -> None:
    user, _, _ = connected_user(gateway, simulator, "inbox-older")
    contact = "5511987650019"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "insert into whatsapp_messages (user_id, whatsapp_session_id, direction, phone,"
            " body, status, host_at) select s.user_id, s.id, 'inbound', %s, 'message ' || n,"
            " 'received', now() - make_interval(mins => 100 - n)"
            " from whatsapp_sessions s, generate_series(1, 75) n where s.user_id = %s",
            (contact, user.id),
        )
    page, steps = a_page(browser_context, output_dir / "browser" / "inbox-older")
    messages = page.locator("#messages li.message")

    def newest_first_page() -> None:
        page.goto(f"{gateway.url}/")
        sign_in(page, user.email)
        chat = chat_item(page, f"{contact}@c.us")
        expect(chat).to_have_attribute("data-unread", "75")
        chat.focus()
        page.keyboard.press("Enter")
        expect(messages).to_have_count(50)
        expect(messages.last).to_contain_text("message 75")
        expect(messages.first).to_contain_text("message 26")
        # The newest message is in view, at the bottom.
        expect(messages.last).to_be_in_viewport()

    steps.run("newest-page", newest_first_page)

    def older_on_scroll() -> None:
        page.locator("#messages-scroll").evaluate("(s) => s.scrollTo(0, 0)")
        expect(messages).to_have_count(75)
        expect(messages.first).to_contain_text("message 1")
        expect(page.locator("#messages-older")).to_be_hidden()  # nothing older
        # The message that was at the top stays in view rather than jumping away.
        body = page.locator(".message-body", has_text=re.compile(r"^message 26$"))
        expect(messages.filter(has=body)).to_be_in_viewport()

    steps.run("older-on-scroll", older_on_scroll)
