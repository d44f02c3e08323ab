"""The demo page's files, in a real headless Chromium against the real local stack.

Signs in and links WhatsApp by QR (the simulator's phone scans it). Files the gateway would
refuse are refused in the page before anything is uploaded, and one the gateway refuses is
said in words. An image dropped on the send form goes inline with a caption; a PDF over 3 MiB
is uploaded to Storage first, with its progress shown, then sent by its path; the simulator's
outbox has both byte for byte. Files received through the simulator are shown: the image
decoded, the document's download link giving its bytes, a voice note as a player, and one the
host cannot give yet said in words. Screenshots of each step go to
``.local/test-output/browser/media/``.
"""

from __future__ import annotations

import base64
import os
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, Request, expect

from tests.browser.test_demo_page import (
    PHONE,
    WAIT_MS,
    a_new_user_on_a_page,
    chromium,
    show,
    sign_in,
)
from tests.browser.test_page_templates_schedules_reports import sends
from tests.conftest import Gateway, Simulator
from tests.e2e.test_media import b64, pdf, sha
from wa_gateway.media import types as media_types

ROOT = Path(__file__).resolve().parents[2]
TO = "5511987650002"
FROM = "5511955550003"
MiB = 1024 * 1024
SIGNED = re.compile(r"/storage/v1/object/sign/whatsapp-media/")


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour, which a browser decodes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


@pytest.fixture()
def browser_context(tmp_path: Path) -> Iterator[BrowserContext]:
    with chromium(tmp_path / "profile") as context:
        yield context


def uploads(page: Page) -> list[Request]:
    found: list[Request] = []

    def record(request: Request) -> None:
        if request.method == "POST" and "/storage/v1/object/whatsapp-media/" in request.url:
            found.append(request)

    page.on("request", record)
    return found


def expect_decoded(image: Locator) -> int:
    """The image's natural width once the browser has decoded it (fails if it cannot)."""
    expect(image).to_have_attribute("src", SIGNED)
    width: int = image.evaluate("i => i.decode().then(() => i.naturalWidth)")
    assert width > 0
    return width


def fetched_digest(page: Page, link: Locator) -> dict[str, Any]:
    """What following ``link`` in the page gives: its size and sha256."""
    expect(link).to_have_attribute("href", SIGNED)
    result: dict[str, Any] = link.evaluate(
        """async (a) => {
            const answer = await fetch(a.href);
            const bytes = await answer.arrayBuffer();
            const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
            const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
            return { status: answer.status, size: bytes.byteLength, sha256: hex };
        }"""
    )
    return result


def drop_file(page: Page, name: str, mime: str, data: bytes, on: str = "#send-form") -> bool:
    """Drop a file on ``on``, as dragging one from the desktop does; whether the page took
    the drop (else the browser would open the file in place of the page)."""
    taken: bool = page.evaluate(
        """([name, mime, data, on]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: mime }));
            const target = document.querySelector(on);
            let taken = true;
            for (const type of ["dragenter", "dragover", "drop"]) {
                const event = new DragEvent(type, {
                    dataTransfer: transfer,
                    bubbles: true,
                    cancelable: true,
                });
                target.dispatchEvent(event);
                if (type !== "dragenter") taken = taken && event.defaultPrevented;
            }
            return taken;
        }""",
        [name, mime, b64(data), on],
    )
    return taken


def record_progress(page: Page) -> None:
    """Keep every value the upload's progress bar shows, and whether it was visible."""
    page.evaluate(
        """() => {
            const bar = document.getElementById("send-file-progress");
            window.progressSeen = [];
            new MutationObserver(() => {
                if (!bar.hidden) window.progressSeen.push(Number(bar.value));
            }).observe(bar, { attributes: true, attributeFilter: ["value", "hidden"] });
        }"""
    )


def test_the_page_accepts_the_types_the_gateway_accepts() -> None:
    table = (ROOT / "web" / "attach.js").read_text()
    in_page = {
        mime: (kind, ext)
        for mime, kind, ext in re.findall(
            r'"([a-z0-9.+/-]+)": \{\s*kind: "(\w+)",\s*ext: "(\w+)",?\s*\}', table
        )
    }
    assert in_page == {mime: (t.kind, t.ext) for mime, t in media_types.ACCEPTED.items()}
    assert f"MAX_MEDIA_BYTES = {media_types.MAX_MEDIA_BYTES // MiB} * MiB" in table
    assert f"MAX_CAPTION_CHARS = {media_types.MAX_CAPTION_CHARS};" in table


def test_files_sent_and_received_on_the_page(
    browser_context: BrowserContext,
    gateway: Gateway,
    simulator: Simulator,
    output_dir: Path,
    tmp_path: Path,
) -> None:
    user, name, page, steps = a_new_user_on_a_page(
        gateway, browser_context, "media-page", output_dir / "browser" / "media"
    )
    bodies = sends(page)
    uploaded = uploads(page)
    outgoing = page.locator("#messages li.message.out")
    incoming = page.locator("#messages li.message.in")
    chip = page.locator("#send-attachment")
    error = page.locator("#send-error")
    image = png(48, 32, (31, 157, 85))
    document = pdf(3 * MiB + 512 * 1024)

    def linked() -> None:
        page.goto(f"{gateway.url}/")
        sign_in(page, user.email)
        page.click("#connect-qr")
        expect(page.locator("#qr-image")).to_be_visible()
        simulator.control("POST", f"{name}/scan")
        expect(page.locator("#session-status")).to_have_attribute("data-status", "connected")
        show(page, "chats")
        expect(page.locator("#send-file-button")).to_be_enabled()

    steps.run("linked", linked)

    def refused_before_upload() -> None:
        page.set_input_files(
            "#send-file",
            files=[{"name": "setup.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ"}],
        )
        expect(error).to_contain_text("WhatsApp doesn't take that kind of file (setup.exe)")
        expect(chip).to_be_hidden()
        big = tmp_path / "film.mp4"
        with big.open("wb") as f:
            f.truncate(17 * MiB)  # sparse: nothing written
        page.set_input_files("#send-file", big)
        expect(error).to_contain_text("can be up to 16 MB")
        expect(chip).to_be_hidden()
        assert uploaded == [] and bodies == []

    steps.run("refused-before-upload", refused_before_upload)

    def refused_by_the_gateway() -> None:
        page.fill("#send-phone", TO)
        page.set_input_files(
            "#send-file",
            files=[{"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": pdf(2048)}],
        )
        expect(chip).to_contain_text("photo.jpg")
        page.click("#send-button")
        expect(error).to_have_text(re.compile(r"^WhatsApp doesn't take this file"))
        expect(outgoing).to_have_count(0)
        page.click("#send-file-remove")
        expect(chip).to_be_hidden()
        expect(page.locator("#send-text-label")).to_have_text("Message")
        expect(page.locator("#send-button")).to_have_text("Send")  # a new send, not a retry

    steps.run("refused-by-the-gateway", refused_by_the_gateway, allow=("status of 422",))

    def image_dropped_and_sent_inline() -> None:
        assert drop_file(page, "chart.png", "image/png", image, on="#list-pane")
        expect(chip).to_be_hidden()  # beside the form: kept from the browser, not attached
        assert drop_file(page, "chart.png", "image/png", image)
        expect(chip.locator("#send-file-name")).to_have_text("chart.png")
        expect(chip.locator("#send-file-size")).to_have_text(re.compile(r"KB$|B$"))
        expect(page.locator("#send-text-label")).to_have_text("Caption (optional)")
        page.fill("#send-text", "Our chart")
        page.click("#send-button")
        sent = outgoing.filter(has_text="Our chart")
        expect(sent).to_have_count(1)
        expect(chip).to_be_hidden()
        expect(error).to_be_hidden()
        assert expect_decoded(sent.locator(".media-image img")) == 48
        media = bodies[-1]["media"]
        assert (media["mime_type"], media["filename"], "path" in media) == (
            "image/png",
            "chart.png",
            False,
        )
        assert base64.b64decode(media["data"]) == image and bodies[-1]["message"] == "Our chart"
        assert uploaded == []

    steps.run("image-sent-inline", image_dropped_and_sent_inline)

    def document_uploaded_then_sent() -> None:
        picked = {"name": "price list 2026.pdf", "mimeType": "application/pdf", "buffer": document}
        page.set_input_files("#send-file", files=[picked])
        expect(chip).to_contain_text("price list 2026.pdf")
        expect(chip.locator("#send-file-size")).to_have_text("3.5 MB")
        record_progress(page)
        page.click("#send-button")
        sent = outgoing.filter(has=page.locator(".media-document"))
        expect(sent).to_have_count(1)
        expect(sent.locator(".media-name")).to_have_text("price list 2026.pdf")
        expect(sent.locator(".media-size")).to_have_text("3.5 MB")
        seen = page.evaluate("window.progressSeen")
        assert seen and seen[0] < 100 and seen[-1] == 100 and seen == sorted(seen), seen

        [upload] = uploaded
        path = upload.url.split("/storage/v1/object/whatsapp-media/", 1)[1]
        assert re.fullmatch(rf"{user.id}/outgoing/[0-9a-f]{{16}}-price_list_2026\.pdf", path)
        assert upload.headers["x-upsert"] == "false"
        assert upload.headers["content-type"] == "application/pdf"
        assert bodies[-1]["media"] == {
            "path": path,
            "mime_type": "application/pdf",
            "filename": "price list 2026.pdf",
        }
        got = fetched_digest(page, sent.locator("a.media-download"))
        assert got == {"status": 200, "size": len(document), "sha256": sha(document)}

    steps.run("document-uploaded", document_uploaded_then_sent)

    [sent_image, sent_document] = simulator.outbox(name)
    assert (sent_image["type"], sent_image["filename"], sent_image["sha256"]) == (
        "image",
        "chart.png",
        sha(image),
    )
    assert sent_image["caption"] == "Our chart"
    assert (sent_document["type"], sent_document["mime_type"], sent_document["sha256"]) == (
        "document",
        "application/pdf",
        sha(document),
    )
    assert sent_document["filename"] == "price list 2026.pdf"
    assert sent_document["size"] == len(document)

    received_image = png(64, 40, (42, 123, 228))
    received_document = pdf(200 * 1024)
    voice_note = b"OggS\x00\x02" + os.urandom(20 * 1024)

    def received() -> None:
        for body, media in (
            ("a photo", {"data": b64(received_image), "mime_type": "image/png"}),
            (
                "",
                {
                    "data": b64(received_document),
                    "mime_type": "application/pdf",
                    "filename": "invoice.pdf",
                },
            ),
            ("", {"data": b64(voice_note), "mime_type": "audio/ogg; codecs=opus"}),
        ):
            message = {"from": FROM, "body": body, "media": media}
            simulator.control("POST", f"{name}/incoming", message)
        chat = page.locator(f'#conversations [data-chat="{FROM}@c.us"]')
        expect(chat).to_be_visible(timeout=3 * WAIT_MS)
        chat.click()
        expect(incoming).to_have_count(3, timeout=3 * WAIT_MS)
        expect(page.locator("#chat-title")).to_have_text("+5511955550003")
        photo = incoming.filter(has_text="a photo")
        assert expect_decoded(photo.locator(".media-image img")) == 64
        expect(photo.locator(".media-image a")).to_have_attribute("target", "_blank")
        doc = incoming.filter(has=page.locator(".media-document"))
        expect(doc.locator(".media-name")).to_have_text("invoice.pdf")
        expect(doc.locator(".message-body")).to_be_hidden()
        got = fetched_digest(page, doc.locator("a.media-download"))
        assert got == {
            "status": 200,
            "size": len(received_document),
            "sha256": sha(received_document),
        }
        voice = incoming.filter(has=page.locator(".media-ptt"))
        expect(voice.locator(".media-label")).to_have_text("Voice note")
        expect(voice.locator("audio")).to_have_attribute("src", SIGNED)

    steps.run("received", received)

    def not_fetched_yet() -> None:
        with simulator.faulty(error_rate=1.0, routes=["download-media"]):
            media = {"data": b64(image), "mime_type": "image/png"}
            simulator.control(
                "POST", f"{name}/incoming", {"from": FROM, "body": "later", "media": media}
            )
            waiting = incoming.filter(has_text="later")
            expect(waiting.locator(".media-note")).to_have_text(
                f"Photo ({len(image)} B). The file is on its way from WhatsApp…",
                timeout=3 * WAIT_MS,
            )
            expect(waiting.locator("img")).to_have_count(0)

    steps.run("not-fetched-yet", not_fetched_yet)

    def phone_width() -> None:
        page.set_viewport_size(PHONE)
        wider = page.locator("#messages .message-media").evaluate_all(
            """(boxes) => boxes
                .filter((b) => {
                    const item = b.closest("li").getBoundingClientRect();
                    return b.getBoundingClientRect().right > item.right;
                })
                .map((b) => b.dataset.kind)"""
        )
        assert wider == [], f"files wider than their message at phone width: {wider}"
        # The voice note's player keeps a usable seek bar, not a dot.
        player = page.locator("#messages .media-ptt audio")
        assert player.evaluate("(a) => a.getBoundingClientRect().width") >= 200

    steps.run("phone-width", phone_width)
