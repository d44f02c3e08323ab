"""The demo page follows a session through the real host's timing, in a real headless Chromium
against the real local stack: a pairing code that changes on the host is shown as it changes,
with a sentence saying that it does; a typed code logs in and the page says the host is
getting WhatsApp ready (a send meanwhile is told to wait, nothing sent) until it is connected.
Screenshots of each step go to ``.local/test-output/browser/sessions/``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Route, expect

from tests.browser.test_demo_page import (
    a_new_user_on_a_page,
    a_page,
    chromium,
    send_from_the_composer,
    show,
    sign_in,
    wait_for,
)
from tests.conftest import Gateway, Simulator
from tests.e2e.flows import connected_user

CODE = re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}$")


@pytest.fixture()
def browser_context(tmp_path: Path) -> Iterator[BrowserContext]:
    with chromium(tmp_path / "profile") as context:
        yield context


def test_the_page_shows_each_new_pairing_code_and_a_login_getting_ready(
    browser_context: BrowserContext, gateway: Gateway, simulator: Simulator, output_dir: Path
) -> None:
    user, name, page, steps = a_new_user_on_a_page(
        gateway, browser_context, "pagecodes", output_dir / "browser" / "sessions"
    )
    with simulator.configured(qr_refresh_ms=2500, connect_delay_ms=5000):
        steps.run("signed-in", lambda: (page.goto(f"{gateway.url}/"), sign_in(page, user.email)))

        def code_shown() -> None:
            page.click("#tab-code")
            page.fill("#pair-phone", "5511988887777")
            page.click("#connect-code")
            expect(page.locator("#pairing-code")).to_have_text(CODE)
            expect(page.locator("#pairing-code-note")).to_be_visible()
            expect(page.locator("#pairing-code-note")).to_contain_text("new code")

        steps.run("pairing-code", code_shown)

        def code_changes() -> None:
            code = page.locator("#pairing-code")
            first = code.text_content() or ""
            # The host asks WhatsApp for a new code at each QR rotation; the page follows.
            expect(code).not_to_have_text(first, timeout=8_000)
            expect(code).to_have_text(CODE)
            host_code = simulator.state(name)["phoneCode"]
            expect(code).to_have_text(host_code, timeout=8_000)

        steps.run("pairing-code-changed", code_changes)

        def getting_ready() -> None:
            simulator.control("POST", f"{name}/scan")  # the code typed on the phone
            status = page.locator("#session-status")
            expect(status).to_have_attribute("data-status", "syncing")
            expect(status).to_have_text("Getting ready…")
            expect(page.locator("#session-starting-text")).to_contain_text("getting ready")
            expect(page.locator("#session-code")).to_be_hidden()
            expect(page.locator("#session-restart")).to_be_hidden()

        steps.run("getting-ready", getting_ready)

        def send_waits() -> None:
            # A syncing login may already be sent to.
            send_from_the_composer(page, "5511987650009", "too soon")
            expect(page.locator("#send-error")).to_contain_text("nothing was sent")
            expect(page.locator("#send-button")).to_have_text(re.compile(r"^Wait \d+ s$"))
            assert simulator.outbox(name) == []

        steps.run("send-waits", send_waits, allow=("status of 503",))

        def connected() -> None:
            status = page.locator("#session-status")
            expect(status).to_have_attribute("data-status", "connected", timeout=10_000)
            expect(status).to_have_text("Connected")
            button = page.locator("#send-button")
            expect(button).to_have_text(re.compile(r"[Ss]end$"), timeout=6_000)
            button.click()
            expect(page.locator(".message.out .message-body").first).to_have_text("too soon")

        steps.run("connected", connected)
    assert [m["body"] for m in simulator.outbox(name)] == ["too soon"]


def test_a_view_the_user_chose_is_not_taken_back_by_the_first_status(
    browser_context: BrowserContext, gateway: Gateway, simulator: Simulator, output_dir: Path
) -> None:
    """A linked user's page opens on the chats once their session's first status arrives; a
    user who has already gone to Settings by then stays there."""
    user, _, _ = connected_user(gateway, simulator, "pagechoice")
    page, steps = a_page(browser_context, output_dir / "browser" / "sessions")
    held: list[Route] = []
    holding = [True]

    def hold(route: Route) -> None:
        if holding[0]:
            held.append(route)
        else:
            route.continue_()

    page.route(f"{gateway.fn('status')}**", hold)

    def settings_before_the_status() -> None:
        page.goto(f"{gateway.url}/")
        sign_in(page, user.email)
        wait_for(page, lambda: bool(held), "the page's first status read")
        show(page, "settings")
        holding[0] = False
        for route in held:
            route.continue_()
        expect(page.locator("#session-status")).to_have_attribute("data-status", "connected")
        expect(page.locator("#nav-settings")).to_have_attribute("aria-current", "page")

    steps.run("settings-chosen", settings_before_the_status)
