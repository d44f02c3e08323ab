"""The demo page (``web/``) in a real headless Chromium, against the real local stack.

Signs in, links WhatsApp by QR (the simulator's phone scans it), sends a message (after an
API error shown in words, retried with the same Idempotency-Key), watches it get delivered,
receives one, looks at the page at phone width, and disconnects. Every step leaves a
screenshot in ``.local/test-output/browser/``; a failing step leaves ``FAILED-<step>.png``
and names the step. Any console error or uncaught page error fails the test, as does any
request leaving 127.0.0.1.

A second test runs the page as it runs in production (a Supabase URL and key configured),
with Realtime's websocket answered by the test itself in the protocol supabase-js speaks, and
access tokens short-lived enough that supabase-js refreshes them during the test: live
updates must keep arriving, and Realtime must be handed the new token. Both tests end with a
sign-out, after which the session's refresh tokens are refused.

Chromium is Debian's (``make browser`` installs it); Playwright only drives it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    WebSocketRoute,
    expect,
    sync_playwright,
)

from local import devdb
from tests.browser.test_dev_auth import SESSION_FIELDS
from tests.conftest import Gateway, GatewayWith, Simulator
from tests.e2e.flows import wait_for_status
from wa_gateway.sessions.accounts import session_name_for

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 10_000
POLL_MIN_MS = 1_000  # the page's shortest poll period (web/live.js)
expect.set_options(timeout=WAIT_MS)


def chromium_path() -> str:
    """Debian's ``chromium`` on PATH, or ``CHROMIUM`` if set (another build of Chromium)."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("Chromium is not installed: run `make browser` (Debian's chromium package)")
    return found


@contextmanager
def chromium(profile: Path, timezone_id: str = "UTC") -> Iterator[BrowserContext]:
    """Debian's Chromium with a fresh profile, headless, its clock in ``timezone_id``; no
    browser download involved."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium_path(),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=DESKTOP,
            locale="en-US",
            timezone_id=timezone_id,
        )
        context.set_default_timeout(WAIT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture()
def browser_context(tmp_path: Path) -> Iterator[BrowserContext]:
    with chromium(tmp_path / "profile") as context:
        yield context


class Steps:
    """Named steps: a screenshot after each, ``FAILED-<step>.png`` and the step's name on
    failure, and no console error or page error allowed except those a step expects."""

    def __init__(self, page: Page, folder: Path):
        self.page = page
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        self.count = 0
        self.problems: list[str] = []
        self.remote: list[str] = []
        self.allowed: tuple[str, ...] = ()
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("request", self._request)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        if any(pattern in message.text for pattern in self.allowed):
            return
        self.problems.append(f"console error: {message.text}")

    def _request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob", "about"):
            return
        if parts.hostname not in ("127.0.0.1", "localhost"):
            self.remote.append(request.url)

    def run(self, name: str, action: Callable[[], None], *, allow: tuple[str, ...] = ()) -> None:
        """Run ``action()`` as step ``name``; ``allow``: console errors it expects."""
        self.count += 1
        label = f"{self.count:02d}-{name}"
        self.allowed = allow
        try:
            action()
            assert not self.problems, "; ".join(self.problems)
            assert not self.remote, f"requests left the machine: {self.remote}"
        except Exception as exc:
            self.page.screenshot(path=self.folder / f"FAILED-{label}.png", full_page=True)
            seen = f" (browser: {'; '.join(self.problems)})" if self.problems else ""
            raise AssertionError(f"browser step '{name}' failed: {exc}{seen}") from exc
        finally:
            self.allowed = ()
        self.page.screenshot(path=self.folder / f"{label}.png", full_page=True)


def idempotency_keys(page: Page) -> list[str | None]:
    """The Idempotency-Key of every send-message request the page makes, in order."""
    keys: list[str | None] = []

    def record(request: Request) -> None:
        if request.method == "POST" and "/send-message/" in request.url:
            keys.append(request.headers.get("idempotency-key"))

    page.on("request", record)
    return keys


@dataclass
class TokenAnswer:
    url: str
    status: int
    body: dict[str, Any]


def token_answers(page: Page) -> list[TokenAnswer]:
    """Every answer of the Supabase Auth token endpoint the page gets, in order (read as they
    arrive: a reload drops the bodies of the previous document's answers)."""
    answers: list[TokenAnswer] = []

    def record(response: Response) -> None:
        if "/auth/v1/token" in response.url:
            answers.append(TokenAnswer(response.url, response.status, response.json()))

    page.on("response", record)
    return answers


def refresh_tokens(answers: list[TokenAnswer]) -> list[str]:
    return [a.body["refresh_token"] for a in answers if a.status == 200]


def assert_refused(gateway: Gateway, refresh_token: str) -> None:
    """Supabase Auth's answer to a refresh token that no longer works."""
    answer = requests.post(
        f"{gateway.url}/auth/v1/token?grant_type=refresh_token",
        json={"refresh_token": refresh_token},
        headers={"apikey": "local", "x-supabase-api-version": "2024-01-01"},
        timeout=10,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] in ("refresh_token_not_found", "refresh_token_already_used")


def wait_for(page: Page, condition: Callable[[], bool], what: str) -> None:
    """Wait for something the test itself sees (such as a message the fake socket got),
    letting Playwright deliver events meanwhile."""
    deadline = time.monotonic() + 4 * WAIT_MS / 1000
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(50)


def sign_in(page: Page, email: str) -> None:
    page.fill("#email", email)
    page.fill("#password", "password")
    page.click("#signin-button")
    expect(page.locator("#app-view")).to_be_visible()
    expect(page.locator("#account-email")).to_have_text(email)


def show(page: Page, view: str) -> None:
    """Switch the page to its chats or its settings (the session card, templates, report,
    backend) with the header's buttons."""
    page.click(f"#nav-{view}")
    expect(page.locator(f"#nav-{view}")).to_have_attribute("aria-current", "page")


def a_page(context: BrowserContext, folder: Path) -> tuple[Page, Steps]:
    """A new page, and its steps, recorded in ``folder``."""
    page = context.new_page()
    return page, Steps(page, folder)


def a_new_user_on_a_page(
    gateway: Gateway, context: BrowserContext, label: str, folder: Path
) -> tuple[devdb.DevUser, str, Page, Steps]:
    """A new user (not linked), their session's name, a new page, and its steps, recorded in
    ``folder``."""
    user = gateway.new_user(label)
    return user, session_name_for(user.id), *a_page(context, folder)


def send_from_the_composer(page: Page, phone: str, text: str) -> None:
    """Type a message to ``phone`` in the chats' composer, and send it."""
    show(page, "chats")
    page.fill("#send-phone", phone)
    page.fill("#send-text", text)
    page.click("#send-button")


def expect_qr(page: Page) -> None:
    image = page.locator("#qr-image")
    expect(image).to_be_visible()
    expect(image).to_have_attribute("src", re.compile(r"^data:image/png;base64,[A-Za-z0-9+/=]+$"))
    page.wait_for_function(
        "() => { const i = document.getElementById('qr-image');"
        " return i.complete && i.naturalWidth > 0 }"
    )
    assert image.evaluate("i => i.naturalWidth") > 0
    expect(page.locator("#qr-countdown")).to_have_text(re.compile(r"Expires in \d+:\d\d"))


def test_demo_page_links_sends_and_disconnects(
    browser_context: BrowserContext,
    gateway: Gateway,
    simulator: Simulator,
    output_dir: Path,
) -> None:
    user, name, page, steps = a_new_user_on_a_page(
        gateway, browser_context, "browser", output_dir / "browser"
    )
    keys = idempotency_keys(page)
    answers = token_answers(page)
    started = time.monotonic()

    def open_page() -> None:
        page.goto(f"{gateway.url}/")
        expect(page.locator("#signin-view")).to_be_visible()
        expect(page.locator("#local-hint")).to_be_visible()

    steps.run("sign-in-page", open_page)

    def wrong_password() -> None:
        page.fill("#email", user.email)
        page.fill("#password", "not-the-password")
        page.click("#signin-button")
        expect(page.locator("#signin-error")).to_have_text(
            "That email and password don't match an account."
        )
        expect(page.locator("#signin-view")).to_be_visible()

    steps.run("sign-in-refused", wrong_password, allow=("status of 400",))

    def signed_in() -> None:
        sign_in(page, user.email)
        expect(page.locator("#session-status")).to_have_attribute("data-status", "none")
        # Not linked yet: the page opens on its settings, where linking is.
        expect(page.locator("#session-disconnected")).to_be_visible()
        show(page, "chats")
        expect(page.locator("#conversations-empty")).to_be_visible()
        expect(page.locator("#send-phone")).to_be_disabled()
        expect(page.locator("#send-hint")).to_be_visible()
        show(page, "settings")
        live = page.locator("#live-mode")
        expect(live).to_have_attribute("data-mode", "polling")
        expect(live).to_contain_text("polling the status function")

    steps.run("signed-in", signed_in)

    def pairing_code() -> None:
        # The tabs follow WAI-ARIA's pattern: one tab stop, arrows move between the tabs.
        page.focus("#tab-qr")
        page.keyboard.press("ArrowRight")
        expect(page.locator("#tab-code")).to_have_attribute("aria-selected", "true")
        expect(page.locator("#tab-code")).to_be_focused()
        expect(page.locator("#panel-code")).to_be_visible()
        page.keyboard.press("ArrowLeft")
        expect(page.locator("#tab-qr")).to_have_attribute("aria-selected", "true")
        expect(page.locator("#panel-code")).to_be_hidden()
        page.keyboard.press("End")
        expect(page.locator("#tab-code")).to_be_focused()
        page.fill("#pair-phone", "+55 11 98888-7777")
        page.click("#connect-code")
        expect(page.locator("#session-status")).to_have_attribute("data-status", "pairing")
        expect(page.locator("#pairing-code")).to_have_text(re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}$"))
        expect(page.locator("#session-qr")).to_be_hidden()

    steps.run("pairing-code", pairing_code)

    def cancelled() -> None:
        expect(page.locator("#disconnect")).to_have_text("Cancel")
        page.click("#disconnect")
        expect(page.locator("#session-status")).to_have_attribute("data-status", "disconnected")
        # The card says why it is not linked (status_reason), in words.
        expect(page.locator("#session-reason")).to_have_text(re.compile("stopped linking"))
        page.click("#tab-qr")
        expect(page.locator("#connect-qr")).to_be_visible()

    steps.run("pairing-cancelled", cancelled)

    def still_pairing_on_the_host() -> None:
        # Nothing the host offers stops a pairing browser: it runs on until its autoClose,
        # and a QR pairing meanwhile is refused as busy.
        assert simulator.state(name)["status"] == "PHONECODE"
        page.click("#connect-qr")
        expect(page.locator("#session-error")).to_contain_text("busy")
        expect(page.locator("#session-status")).to_have_attribute("data-status", "disconnected")
        simulator.control("POST", f"{name}/expire")  # the host's autoClose, now
        assert simulator.state(name)["status"] == "CLOSED"

    steps.run("pairing-busy", still_pairing_on_the_host, allow=("status of 409",))

    def qr_shown() -> None:
        page.click("#connect-qr")
        expect(page.locator("#session-status")).to_have_attribute("data-status", "pairing")
        expect_qr(page)
        # The button pressed is gone: the focus is on what replaced it, not the page's body.
        expect(page.locator("#session-qr")).to_be_focused()

    steps.run("qr-code", qr_shown)

    def qr_renewed() -> None:
        first = page.locator("#qr-image").get_attribute("src")
        simulator.control("POST", f"{name}/refresh-qr")  # the host sends its next QR
        expect(page.locator("#qr-image")).not_to_have_attribute("src", first or "")
        expect_qr(page)
        # The next code lives 20 s, the first 60 s: the bar keeps the first one's scale, so it
        # shows a third left rather than jumping back to full on a new scale.
        progress = page.locator("#qr-progress")
        assert progress.evaluate("p => p.max") >= 50
        assert progress.evaluate("p => p.value") <= 20
        expect(page.locator("#qr-countdown")).to_have_text(re.compile(r"Expires in 0:[012]\d"))

    steps.run("qr-renewed", qr_renewed)

    def connected() -> None:
        simulator.control("POST", f"{name}/scan")
        status = page.locator("#session-status")
        expect(status).to_have_attribute("data-status", "connected")
        expect(status).to_have_text("Connected")
        expect(page.locator("#session-qr")).to_be_hidden()
        expect(page.locator("#send-phone")).to_be_enabled()

    steps.run("connected", connected)

    def error_in_words() -> None:
        send_from_the_composer(page, "12345", "Hello from the browser test")
        error = page.locator("#send-error")
        expect(error).to_contain_text("phone number doesn't look right")
        # Sending the same again cannot help: no "Retry send" is offered.
        expect(page.locator("#send-button")).to_have_text("Send")
        page.fill("#send-phone", "+55 (11) 99999-0001")
        expect(error).to_be_hidden()  # about the number it no longer has
        with simulator.faulty(error_rate=1.0, routes=["send-message"]):
            page.click("#send-button")
            expect(error).to_contain_text("host answered with an error")
            expect(page.locator("#send-button")).to_have_text("Retry send")

    steps.run("send-error", error_in_words, allow=("status of 422", "status of 502"))

    def delivered() -> None:
        page.click("#send-button")  # the retry: the same key
        expect(page.locator("#send-error")).to_be_hidden()
        expect(page.locator("#send-text")).to_have_value("")
        sent = page.locator("#messages li.message.out", has_text="Hello from the browser test")
        expect(sent).to_have_count(1)
        expect(sent).to_have_attribute("data-status", re.compile("^(delivered|read)$"))
        expect(page.locator("#chat-title")).to_have_text("+5511999990001")
        expect(page.locator('#conversations [data-chat="5511999990001@c.us"]')).to_be_visible()

    steps.run("delivered", delivered)
    assert len(keys) == 3 and all(keys), keys
    assert keys[0] != keys[1] == keys[2], f"a retried send must reuse its key: {keys}"
    assert len(simulator.outbox(name)) == 1, "the host sent the message more than once"

    def received() -> None:
        simulator.control(
            "POST", f"{name}/incoming", {"from": "5511988887777", "body": "Oi! Tudo bem?"}
        )
        chat = page.locator('#conversations [data-chat="5511988887777@c.us"]')
        # Nothing was moving, so the page may be at its slowest poll (10 s) by now.
        expect(chat).to_have_attribute("data-unread", "1", timeout=2 * WAIT_MS)
        expect(chat).to_contain_text("Oi! Tudo bem?")
        chat.click()
        incoming = page.locator("#messages li.message.in", has_text="Oi! Tudo bem?")
        expect(incoming).to_have_count(1)
        expect(incoming).to_have_attribute("data-status", "received")
        expect(page.locator("#chat-title")).to_have_text("+5511988887777")
        expect(chat).to_have_attribute("data-unread", "0")  # read, once opened

    steps.run("received", received)

    def reloaded() -> None:  # the session kept in the tab's sessionStorage carries over
        page.reload()
        expect(page.locator("#app-view")).to_be_visible()
        expect(page.locator("#account-email")).to_have_text(user.email)
        expect(page.locator("#session-status")).to_have_attribute("data-status", "connected")
        page.click('#conversations [data-chat="5511988887777@c.us"]')
        expect(page.locator("#messages li.message.in", has_text="Oi! Tudo bem?")).to_have_count(1)

    steps.run("reloaded", reloaded)

    def phone_width() -> None:
        page.set_viewport_size(PHONE)
        show(page, "settings")
        expect(page.locator("#session-status")).to_be_in_viewport()
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px at phone width"

    steps.run("phone-width", phone_width)
    page.set_viewport_size(DESKTOP)

    def disconnected() -> None:
        # Typed and left behind on purpose (the next user must not see it).
        show(page, "chats")
        page.click("#new-chat")
        page.fill("#send-phone", "5511977776666")
        page.fill("#search", "Tudo")
        show(page, "settings")
        page.click("#disconnect")
        # Asked first; going back keeps the link.
        expect(page.locator("#confirm")).to_be_visible()
        expect(page.locator("#confirm-text")).to_contain_text("Disconnect this WhatsApp number?")
        page.click("#confirm-no")
        expect(page.locator("#confirm")).to_be_hidden()
        status = page.locator("#session-status")
        expect(status).to_have_attribute("data-status", "connected")
        page.click("#disconnect")
        page.click("#confirm-yes")
        expect(status).to_have_attribute("data-status", "disconnected")
        expect(status).to_have_text("Not linked")
        expect(page.locator("#session-reason")).to_have_text(re.compile("disconnected this number"))
        expect(page.locator("#connect-qr")).to_be_visible()
        show(page, "chats")
        expect(page.locator("#send-phone")).to_be_disabled()
        expect(page.locator("#send-hint")).to_be_visible()

    steps.run("disconnected", disconnected)
    assert time.monotonic() - started < 60
    assert len(refresh_tokens(answers)) == 1  # an hour-long token: nothing to refresh

    def signed_out() -> None:
        # What this user typed, left behind on purpose: the next one must not see it.
        show(page, "settings")
        page.click("#tab-code")
        page.fill("#pair-phone", "5511955554444")
        page.click("#sign-out")
        expect(page.locator("#signin-view")).to_be_visible()
        assert page.evaluate("() => sessionStorage.length") == 0
        assert_refused(gateway, refresh_tokens(answers)[0])  # revoked by the sign-out

    steps.run("signed-out", signed_out)

    def next_user() -> None:
        sign_in(page, gateway.new_user("browser-next").email)
        expect(page.locator("#session-status")).to_have_attribute("data-status", "none")
        expect(page.locator("#pair-phone")).to_have_value("")
        expect(page.locator("#tab-qr")).to_have_attribute("aria-selected", "true")
        show(page, "chats")
        expect(page.locator("#send-phone")).to_have_value("")
        expect(page.locator("#search")).to_have_value("")
        expect(page.locator("#conversations li")).to_have_count(0)
        expect(page.locator("#conversations-empty")).to_be_visible()

    steps.run("next-user-sees-nothing-of-the-last", next_user)


# --- Production mode: Supabase configured, Realtime answered by the test ----------------------

# supabase-js (auth-js) refreshes a session on getSession() when less than EXPIRY_MARGIN_MS
# (90 s) is left, and on its 30 s auto-refresh tick when less than 4 ticks are: 30 s tokens
# are refreshed as soon as the page (or realtime-js, on joining and on each heartbeat) asks
# for the session, and on every tick.
SHORT_TOKEN_LIFETIME_S = 30
COLUMN_TYPES = {
    "id": "uuid",
    "user_id": "uuid",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
}


class FakeRealtime:
    """Plays Supabase Realtime's side of the websocket as realtime-js speaks it by default:
    Phoenix channels, serializer ``vsn=2.0.0``, whose text frames are JSON arrays
    ``[join_ref, ref, topic, event, payload]``."""

    def __init__(self) -> None:
        self.socket: WebSocketRoute | None = None
        self.url = ""
        self.topic = ""
        self.joins: list[dict[str, Any]] = []
        self.tokens: list[str] = []  # every access token it was given: joins and updates
        self.ids: dict[str, int] = {}  # table -> the id of its postgres_changes binding
        self.left = False

    def accept(self, ws: WebSocketRoute) -> None:
        self.socket = ws
        self.url = ws.url
        ws.on_message(self.receive)

    def receive(self, raw: str | bytes) -> None:
        join_ref, ref, topic, event, payload = json.loads(raw)
        if event == "phx_join":
            self.topic = topic
            self.joins.append(payload)
            self.tokens.append(payload["access_token"])
            bindings = []
            for i, change in enumerate(payload["config"]["postgres_changes"]):
                self.ids[change["table"]] = 1000 + i
                bindings.append({**change, "id": 1000 + i})
            self.reply(join_ref, ref, topic, {"postgres_changes": bindings})
            self.send(
                None,
                None,
                topic,
                "system",
                {
                    "status": "ok",
                    "message": "Subscribed to PostgreSQL",
                    "extension": "postgres_changes",
                    "channel": topic.removeprefix("realtime:"),
                },
            )
        elif event == "access_token":
            self.tokens.append(payload["access_token"])
        elif event in ("heartbeat", "phx_leave"):
            self.left = self.left or event == "phx_leave"
            self.reply(join_ref, ref, topic, {})

    def reply(self, join_ref: str | None, ref: str, topic: str, response: Any) -> None:
        self.send(join_ref, ref, topic, "phx_reply", {"status": "ok", "response": response})

    def send(
        self, join_ref: str | None, ref: str | None, topic: str, event: str, payload: Any
    ) -> None:
        assert self.socket is not None
        self.socket.send(json.dumps([join_ref, ref, topic, event, payload]))

    def change(self, table: str, record: dict[str, Any], kind: str = "UPDATE") -> None:
        data = {
            "schema": "public",
            "table": table,
            "type": kind,
            "commit_timestamp": "2026-11-25T00:00:00.000Z",
            "columns": [{"name": k, "type": COLUMN_TYPES.get(k, "text")} for k in record],
            "record": record,
            "old_record": {"id": record["id"]},
            "errors": None,
        }
        self.send(
            None, None, self.topic, "postgres_changes", {"ids": [self.ids[table]], "data": data}
        )


@pytest.fixture(scope="module")
def short_token_gateway(gateway_with: GatewayWith) -> Iterator[Gateway]:
    """A gateway of its own whose dev sign-in issues 30 s access tokens."""
    with gateway_with(
        "short-tokens", DEV_AUTH_TOKEN_LIFETIME_S=str(SHORT_TOKEN_LIFETIME_S)
    ) as started:
        yield started


def stored_session(page: Page) -> dict[str, Any]:
    """The session supabase-js keeps in the tab's sessionStorage."""
    stored: dict[str, Any] = page.evaluate(
        "() => JSON.parse(sessionStorage.getItem('wa-demo-auth') || 'null')"
    )
    return stored


def test_demo_page_follows_realtime_when_supabase_is_configured(
    browser_context: BrowserContext,
    short_token_gateway: Gateway,
    simulator: Simulator,
    output_dir: Path,
) -> None:
    gateway = short_token_gateway
    user, name, page, steps = a_new_user_on_a_page(
        gateway, browser_context, "realtime", output_dir / "browser" / "realtime"
    )
    realtime = FakeRealtime()
    answers = token_answers(page)
    # The gateway's dev sign-in and dev reads stand in for Supabase Auth and PostgREST (same
    # paths, same shapes); only the page's configuration differs from the local mode.
    production_config = {
        "supabaseUrl": gateway.url,
        "supabaseKey": "sb_publishable_test_key",
        "functions": {
            "startSession": gateway.fn("start-session"),
            "status": gateway.fn("status"),
            "sendMessage": gateway.fn("send-message"),
            "disconnect": gateway.fn("disconnect"),
        },
    }
    page.route(
        "**/config.js",
        lambda route: route.fulfill(
            content_type="text/javascript",
            body=f"window.WA_CONFIG = {json.dumps(production_config)};",
        ),
    )
    page.route_web_socket(re.compile(r".*/realtime/v1/websocket.*"), realtime.accept)
    rest_headers: list[dict[str, str]] = []
    page.on(
        "request",
        lambda r: rest_headers.append(r.headers) if "/rest/v1/" in r.url else None,
    )
    status_reads: list[str] = []
    page.on(
        "request",
        lambda r: status_reads.append(r.url) if r.url.startswith(gateway.fn("status")) else None,
    )

    def subscribed() -> None:
        # Served from another origin than "Supabase" (localhost against 127.0.0.1), as in
        # production: every answer supabase-js reads needs the local stack's CORS headers.
        # (While the test routes requests, Playwright answers CORS preflights itself;
        # test_dev_auth.py checks the stack's.)
        page.goto(f"{gateway.url.replace('127.0.0.1', 'localhost')}/")
        expect(page.locator("#local-hint")).to_be_hidden()
        sign_in(page, user.email)
        live = page.locator("#live-mode")
        expect(live).to_have_attribute("data-mode", "realtime")
        expect(live).to_contain_text("Supabase Realtime")
        assert "apikey=sb_publishable_test_key" in realtime.url and "vsn=2.0.0" in realtime.url
        assert realtime.topic == f"realtime:whatsapp-{user.id}"
        join = realtime.joins[0]
        assert join["access_token"]
        tables = {c["table"]: c for c in join["config"]["postgres_changes"]}
        assert set(tables) == {
            "whatsapp_sessions",
            "whatsapp_messages",
            "whatsapp_chats",
            "whatsapp_reactions",
            "whatsapp_groups",
        }
        for change in tables.values():
            assert change["filter"] == f"user_id=eq.{user.id}" and change["event"] == "*"
        expect(page.locator("#session-status")).to_have_attribute("data-status", "none")
        # The page's first read of its rows may still be on its way once the status shows.
        wait_for(page, lambda: bool(rest_headers), "the page's first read through PostgREST")
        assert rest_headers[-1].get("apikey") == "sb_publishable_test_key"
        assert rest_headers[-1].get("x-client-info", "").startswith("supabase-js")

    steps.run("subscribed", subscribed)

    def token_refreshed() -> None:
        first = answers[0].body
        assert first["expires_in"] == SHORT_TOKEN_LIFETIME_S
        assert set(first) == SESSION_FIELDS
        # supabase-js refreshes the session and hands the new token to Realtime itself.
        wait_for(
            page,
            lambda: (
                realtime.tokens[-1] != first["access_token"]
                and realtime.tokens[-1] == stored_session(page)["access_token"]
            ),
            "Realtime to be given the refreshed access token",
        )
        assert any("grant_type=refresh_token" in a.url for a in answers if a.status == 200)
        expect(page.locator("#live-mode")).to_have_attribute("data-mode", "realtime")

    steps.run("token-refreshed", token_refreshed)

    def pairing() -> None:
        page.click("#connect-qr")
        expect_qr(page)

    steps.run("qr-code", pairing)

    def connected_by_realtime() -> None:
        reads = len(status_reads)
        simulator.control("POST", f"{name}/scan")
        wait_for_status(gateway, gateway.token_for(user), "connected", within_s=WAIT_MS / 1000)
        # What is tested is that nothing happens: a poller left running while subscribed
        # would read the status within one of its periods, so one (and a half) must pass.
        page.wait_for_timeout(POLL_MIN_MS * 1.5)
        assert status_reads[reads:] == [], "the page polled while subscribed"
        expect(page.locator("#session-status")).to_have_attribute("data-status", "pairing")
        realtime.change("whatsapp_sessions", {"id": "x", "user_id": user.id, "status": "connected"})
        expect(page.locator("#session-status")).to_have_attribute("data-status", "connected")

    steps.run("connected", connected_by_realtime)

    def message_status_by_realtime() -> None:
        # The host acks nothing here: only the Realtime change below may bring "read" (a page
        # read after the host's own acks would show it without Realtime).
        with simulator.configured(auto_ack=False):
            send_from_the_composer(page, "5511999990002", "Realtime says read")
            sent = page.locator("#messages li.message.out", has_text="Realtime says read")
            expect(sent).to_have_attribute("data-status", "sent")
        message_id = sent.get_attribute("data-id")
        assert message_id
        realtime.change(
            "whatsapp_messages",
            {
                "id": message_id,
                "user_id": user.id,
                "direction": "outbound",
                "phone": "5511999990002",
                "body": "Realtime says read",
                "status": "read",
                "created_at": "2026-11-25 00:00:00+00",
                "updated_at": "2099-01-01 00:00:00+00",
            },
        )
        expect(sent).to_have_attribute("data-status", "read")

    steps.run("message-read", message_status_by_realtime)

    def conversation_by_realtime() -> None:
        # A contact writes: the conversation list follows whatsapp_chats, no read needed.
        row = {
            "id": "00000000-0000-4000-8000-000000000025",
            "user_id": user.id,
            "chat_id": "5511988880025@c.us",
            "phone": "5511988880025",
            "contact_name": "Realtime Rita",
            "last_message_id": "00000000-0000-4000-8000-000000000026",
            "last_body": "Chegou pelo Realtime",
            "last_at": "2099-01-01 00:00:00+00",
            "last_direction": "inbound",
            "last_message_type": "chat",
            "last_status": "received",
            "unread": 3,
        }
        realtime.change("whatsapp_chats", row, kind="INSERT")
        item = page.locator('#conversations [data-chat="5511988880025@c.us"]')
        expect(item).to_have_attribute("data-unread", "3")
        expect(item).to_contain_text("Realtime Rita")
        expect(item.locator(".conversation-last")).to_have_text("Chegou pelo Realtime")

    steps.run("conversation-live", conversation_by_realtime)

    def signed_out() -> None:
        page.click("#sign-out")
        expect(page.locator("#signin-view")).to_be_visible()
        assert page.evaluate("() => sessionStorage.length") == 0
        wait_for(page, lambda: realtime.left, "the page to leave its Realtime channel")
        issued = refresh_tokens(answers)
        assert len(issued) >= 2, "supabase-js never refreshed the session"
        for token in issued:  # used ones by rotation, the last one by the sign-out
            assert_refused(gateway, token)

    steps.run("signed-out", signed_out)
