"""The demo page's templates, scheduled messages and report, in a real headless Chromium
against the real local stack.

Adds templates (the database's refusals shown in words), deletes one, schedules a message
from a template and another typed one (a time refused by the function shown in words), in a
browser whose clock is in São Paulo so the time is sent with its -03:00 offset, cancels the
second, and sees the first sent once it is due (moved into the past in the database and one
scheduler pass run, rather than waited for); cancelling it then is refused in words. The
report shows the day's messages as SVG bars and the rates as figures. Screenshots of each
step go to ``.local/test-output/browser/templates-schedules-reports/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import BrowserContext, Page, Request, Route, expect

from tests.browser.test_demo_page import WAIT_MS, a_page, chromium, show, sign_in, wait_for
from tests.conftest import Gateway, Handler, Simulator
from tests.e2e.flows import connected_user
from tests.e2e.test_templates_and_schedules import make_due, scheduler_pass

ZONE = "America/Sao_Paulo"  # UTC-03:00 all year
MESSAGE_READS = re.compile(r"/rest/v1/whatsapp_messages\?")
TO = "5511987650001"


@pytest.fixture()
def sao_paulo_browser(tmp_path: Path) -> Iterator[BrowserContext]:
    with chromium(tmp_path / "profile", ZONE) as context:
        yield context


def local_input(delta: timedelta) -> str:
    """A datetime-local value ``delta`` from now, on the browser's (São Paulo's) clock."""
    return (datetime.now(ZoneInfo(ZONE)) + delta).strftime("%Y-%m-%dT%H:%M")


def sends(page: Page) -> list[dict[str, Any]]:
    """The body of every send the page makes (not cancels), in order."""
    bodies: list[dict[str, Any]] = []

    def record(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/send-message/"):
            bodies.append(json.loads(request.post_data or "{}"))

    page.on("request", record)
    return bodies


def nudge(page: Page) -> None:
    """What a tab coming back to the front does: the page looks again at once."""
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")


def add_template(page: Page, name: str, body: str) -> None:
    page.fill("#template-name", name)
    page.fill("#template-body", body)
    page.click("#template-save")


def test_templates_scheduled_messages_and_the_report(
    sao_paulo_browser: BrowserContext,
    gateway: Gateway,
    simulator: Simulator,
    handlers: dict[str, Handler],
    database: str,
    output_dir: Path,
) -> None:
    user, _, session = connected_user(gateway, simulator, "planner")
    page, steps = a_page(sao_paulo_browser, output_dir / "browser" / "templates-schedules-reports")
    sent_bodies = sends(page)
    messages = page.locator("#messages li.message")

    def signed_in() -> None:
        page.goto(f"{gateway.url}/")
        sign_in(page, user.email)
        expect(page.locator("#session-status")).to_have_text("Connected")
        show(page, "settings")
        expect(page.locator("#templates-empty")).to_be_visible()
        expect(page.locator("#send-template-group")).to_be_hidden()
        expect(page.locator("#send-at-hint")).to_contain_text("UTC-03:00")

    steps.run("signed-in", signed_in)

    def templates_refused_in_words() -> None:
        error = page.locator("#template-error")
        add_template(page, "Order Shipped", "Hi {{name}}")
        expect(error).to_have_text(re.compile(r"^A template name is 1 to 64 lowercase"))
        add_template(page, "order_shipped", "Hi {{ name }}")
        expect(error).to_have_text(re.compile(r"^Placeholders look like \{\{name\}\}"))

    steps.run("templates-refused", templates_refused_in_words, allow=("status of 400",))

    def templates_added_and_deleted() -> None:
        add_template(page, "order_shipped", "Hi {{name}}, order {{order}} shipped.")
        expect(page.locator("#templates li[data-name=order_shipped]")).to_be_visible()
        expect(page.locator("#template-error")).to_be_hidden()
        add_template(page, "bye", "Bye!")
        expect(page.locator("#templates li")).to_have_count(2)
        page.click("#templates li[data-name=bye] [data-delete-template]")
        expect(page.locator("#templates li")).to_have_count(1)
        expect(page.locator("#send-template option")).to_have_text(
            ["None: type the message", "order_shipped"]
        )

    steps.run("templates-added-and-deleted", templates_added_and_deleted)

    def duplicate_refused() -> None:
        add_template(page, "order_shipped", "Again")
        expect(page.locator("#template-error")).to_have_text(
            "You already have a template of that name. Pick another name."
        )

    steps.run("template-name-taken", duplicate_refused, allow=("status of 409",))

    def time_refused_in_words() -> None:
        show(page, "chats")
        page.fill("#send-phone", TO)
        page.click("#composer-more summary")  # the composer's template and time
        page.select_option("#send-template", "order_shipped")
        expect(page.locator("#send-text")).to_be_hidden()
        expect(page.locator("#send-variables label")).to_have_text(["{{name}}", "{{order}}"])
        page.fill("#send-var-name", "Ana")
        page.fill("#send-var-order", "#12")
        page.fill("#send-at", local_input(timedelta(minutes=-10)))
        page.click("#send-button")
        expect(page.locator("#send-error")).to_have_text(
            "Pick a time between one minute and 30 days from now to send at."
        )
        expect(messages).to_have_count(0)

    steps.run("send-at-refused", time_refused_in_words, allow=("status of 400",))

    def scheduled_from_the_template() -> None:
        page.fill("#send-at", local_input(timedelta(minutes=3)))
        page.click("#send-button")
        scheduled = messages.filter(has_text="Hi Ana, order #12 shipped.")
        expect(scheduled).to_have_attribute("data-status", "scheduled")
        expect(scheduled.locator(".message-when")).to_contain_text("Scheduled for")
        # The clock is drawn (SVG), not an emoji the page's fonts may not have.
        expect(scheduled.locator(".message-status svg.icon")).to_have_count(1)
        expect(page.locator("#send-error")).to_be_hidden()
        body = sent_bodies[-1]
        assert body["template"] == "order_shipped" and "message" not in body
        assert body["variables"] == {"name": "Ana", "order": "#12"}
        assert body["send_at"].endswith("-03:00"), body["send_at"]
        due = datetime.fromisoformat(body["send_at"]) - datetime.now(ZoneInfo(ZONE))
        assert timedelta(minutes=1) < due <= timedelta(minutes=3), due

    steps.run("scheduled-from-template", scheduled_from_the_template)

    def another_scheduled_then_cancelled() -> None:
        page.select_option("#send-template", "")
        page.fill("#send-text", "to be cancelled")
        page.fill("#send-at", local_input(timedelta(minutes=5)))
        page.click("#send-button")
        other = messages.filter(has_text="to be cancelled")
        expect(other).to_have_attribute("data-status", "scheduled")
        assert "template" not in sent_bodies[-1]
        other.get_by_role("button", name=re.compile("^Cancel the message")).click()
        # Asked first: going back keeps it scheduled.
        expect(page.locator("#confirm-text")).to_contain_text("Cancel this scheduled message?")
        page.click("#confirm-no")
        expect(other).to_have_attribute("data-status", "scheduled")
        other.get_by_role("button", name=re.compile("^Cancel the message")).click()
        page.click("#confirm-yes")
        expect(other).to_have_attribute("data-status", "cancelled")
        expect(other.locator(".message-status")).to_have_text("Cancelled")
        expect(other.locator("[data-cancel]")).to_have_count(0)

    steps.run("cancelled", another_scheduled_then_cancelled)

    def sent_when_due() -> None:
        scheduled = messages.filter(has_text="Hi Ana, order #12 shipped.")
        message_id = scheduled.get_attribute("data-id")
        assert message_id
        # Hold the page's view of the list as it is, so it still offers Cancel after the send.
        frozen: list[str] = []

        def stale(route: Route) -> None:
            if not frozen:
                frozen.append(route.fetch().text())
            route.fulfill(status=200, content_type="application/json", body=frozen[0])

        page.route(MESSAGE_READS, stale)
        nudge(page)
        wait_for(page, lambda: bool(frozen), "the page's read of its messages")

        make_due(database, message_id)
        result = scheduler_pass(handlers)
        assert result["sent"] == 1, result

        scheduled.locator("[data-cancel]").click()
        page.click("#confirm-yes")
        expect(page.locator("#cancel-error")).to_have_text(
            "That message has already gone out (or is going out now), so it can't be cancelled."
        )
        page.unroute(MESSAGE_READS)
        nudge(page)
        expect(scheduled).to_have_attribute(
            "data-status", re.compile("^(sent|delivered|read)$"), timeout=3 * WAIT_MS
        )
        expect(scheduled.locator("[data-cancel]")).to_have_count(0)

    steps.run("sent-when-due", sent_when_due, allow=("status of 409",))

    def report() -> None:
        simulator.control("POST", f"{session}/incoming", {"from": "5511912345678", "body": "oi"})
        nudge(page)
        chat = page.locator('#conversations [data-chat="5511912345678@c.us"]')
        expect(chat).to_be_visible(timeout=3 * WAIT_MS)
        chat.click()
        expect(page.locator("#messages li.message.in")).to_have_count(1)
        # No Refresh pressed: the report reads itself again when it comes on screen.
        show(page, "settings")
        chart = page.locator("#report-chart svg[role=img]")
        expect(chart).to_have_attribute("aria-label", re.compile(r": 1 sent, 1 received\.$"))
        expect(chart.locator("rect.bar.outbound")).to_have_count(1)
        expect(chart.locator("rect.bar.inbound")).to_have_count(1)
        today = datetime.now(ZoneInfo("UTC")).date().isoformat()
        expect(chart.locator("rect.bar.outbound")).to_have_attribute("data-day", today)
        expect(page.locator("[data-figure=sent] dd")).to_have_text("1")
        expect(page.locator("[data-figure=received] dd")).to_have_text("1")
        for rate in ("delivery_rate", "read_rate"):  # a share of the one sent: 0 % to 100 %
            expect(page.locator(f"[data-figure={rate}] dd")).to_have_text(
                re.compile(r"^(\d|\d\d|100) %$")  # the incoming one, read, is not counted
            )
        expect(page.locator("#report-failures li")).to_have_text(["No failed messages."])
        expect(page.locator("#report-templates li")).to_have_text(
            ["order_shipped: 1 (1 sent, 0 scheduled)"]
        )

    steps.run("report", report)
