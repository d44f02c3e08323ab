"""The demo page's "Your backend" card, in a real headless Chromium against the local stack:
make an API key and see it once (copied from the page, then gone), use it, revoke it; add an
event endpoint (its signing secret once), have one at an address inside refused in words; an
incoming message whose delivery fails shows as pending with its attempts, next try and the
endpoint's last answer, then failed; "Replay failed" delivers it. Screenshots of each step go
to ``.local/test-output/browser/backend/``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect
from standardwebhooks.webhooks import Webhook

from local.endpoint_receiver import EndpointReceiver
from tests.browser.test_demo_page import a_page, chromium, show, sign_in
from tests.conftest import DELIVERY_RETRY_FOR_S, Gateway, Simulator
from tests.e2e.flows import assert_error, connected_user
from tests.waiting import wait_until


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    with chromium(tmp_path / "profile") as context:
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        yield context


def test_keys_endpoints_deliveries_and_replay_in_the_page(
    browser: BrowserContext,
    delivering: Gateway,
    simulator: Simulator,
    receiver: EndpointReceiver,
    output_dir: Path,
) -> None:
    user, _, session = connected_user(delivering, simulator, "page-backend")
    page, steps = a_page(browser, output_dir / "browser" / "backend")
    made: dict[str, str] = {}

    def signed_in() -> None:
        page.goto(f"{delivering.url}/")
        sign_in(page, user.email)
        show(page, "settings")
        expect(page.locator("#keys-empty")).to_be_visible()
        expect(page.locator("#endpoints-empty")).to_be_visible()

    steps.run("signed-in", signed_in)

    def key_made_and_shown_once() -> None:
        page.fill("#key-name", "CRM")
        page.check("input[name=key-scope][value=read]")
        page.click("#key-save")
        secret = page.locator("#key-secret .secret-value")
        expect(secret).to_have_text(re.compile(r"^wak_[A-Za-z0-9_-]{43}$"))
        made["key"] = secret.inner_text()
        page.click("#key-secret button:text('Copy')")
        assert page.evaluate("navigator.clipboard.readText()") == made["key"]
        expect(page.locator("#keys li")).to_have_count(1)
        expect(page.locator("#keys li")).to_contain_text(f"{made['key'][:10]}… · send, read")
        page.click("#key-secret button:text('Done')")
        expect(page.locator("#key-secret")).to_be_hidden()
        page.reload()
        expect(page.locator("#keys li")).to_have_count(1)
        assert made["key"] not in page.content()

    steps.run("key-made", key_made_and_shown_once)

    sent = delivering.call(
        "POST", "send-message", made["key"], json={"phone": "5511987654321", "message": "k"}
    )
    assert sent.status_code == 200, sent.text

    def key_revoked() -> None:
        page.click("#keys li button:text('Revoke')")
        expect(page.locator("#keys-empty")).to_be_visible()

    steps.run("key-revoked", key_revoked)
    assert_error(delivering.call("GET", "status", made["key"]), 401, "invalid_token")

    def endpoint_refused_in_words() -> None:
        page.fill("#endpoint-url", "https://10.0.0.1/hook")
        page.click("#endpoint-save")
        expect(page.locator("#endpoint-error")).to_have_text(
            re.compile(r"^That URL can't receive events\. .*private address")
        )

    steps.run("endpoint-refused", endpoint_refused_in_words, allow=("status of 422",))

    def endpoint_added() -> None:
        page.fill("#endpoint-url", f"{receiver.url}/page")
        for event in ("message.sent", "message.status", "session.status"):
            page.uncheck(f"input[name=endpoint-event][value='{event}']")
        page.click("#endpoint-save")
        secret = page.locator("#endpoint-secret .secret-value")
        expect(secret).to_have_text(re.compile(r"^whsec_"))
        made["secret"] = secret.inner_text()
        expect(page.locator("#endpoints li")).to_contain_text(f"{receiver.url}/page")
        expect(page.locator("#endpoint-error")).to_be_hidden()

    steps.run("endpoint-added", endpoint_added)

    receiver.script("/page", [503] * 1000)
    simulator.control("POST", f"{session}/incoming", {"from": "5511912345678", "body": "oi"})
    wait_until(lambda: len(receiver.received("/page")) >= 2, within_s=10)

    def pending_then_failed() -> None:
        page.click("#endpoints li button:text('Deliveries')")
        row = page.locator("#deliveries-rows tr").first
        expect(row).to_contain_text("message.received")
        expect(row.locator("td").nth(1)).to_have_text("pending")
        expect(row.locator("td").nth(4)).to_have_text("503")
        assert int(row.locator("td").nth(2).inner_text()) >= 1
        assert row.locator("td").nth(3).inner_text() != "—"  # the next try
        wait_until(
            lambda: (page.click("#deliveries-refresh"), row.locator("td").nth(1).inner_text())[1],
            lambda status: status == "failed",
            within_s=DELIVERY_RETRY_FOR_S + 6,
        )
        expect(page.locator("#endpoints li")).to_contain_text("1 failed")

    steps.run("pending-then-failed", pending_then_failed)

    def replayed() -> None:
        with receiver._lock:
            receiver._scripts["/page"].clear()
        before = len(receiver.received("/page"))
        page.click("#deliveries-replay")
        expect(page.locator("#deliveries-note")).to_have_text("1 sent again, in order.")
        wait_until(lambda: len(receiver.received("/page")) > before, within_s=5)
        row = page.locator("#deliveries-rows tr").first
        wait_until(
            lambda: (page.click("#deliveries-refresh"), row.locator("td").nth(1).inner_text())[1],
            lambda status: status == "delivered",
            within_s=5,
        )
        expect(row.locator("td").nth(4)).to_have_text("200")

    steps.run("replayed", replayed)
    last = receiver.received("/page")[-1]
    event = Webhook(made["secret"]).verify(last.body, dict(last.headers))
    assert event["data"]["body"] == "oi"
