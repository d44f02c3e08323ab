"""Runtime settings of the simulator: behaviour knobs (``/_sim/config``) and faults.

Both are plain dataclasses updated from JSON by :func:`apply_update`, which accepts only
known keys with values of the right type, so a typo in a test fails loudly instead of
being ignored.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from dataclasses import dataclass, field
from typing import Any, get_type_hints

SERVER_VERSION = "2.10.4"
DEFAULT_SECRET_KEY = "THISISMYSECURETOKEN"  # noqa: S105 - the server's documented default
DELIVERY_MODES = ("normal", "shuffle", "duplicate", "shuffle+duplicate", "concurrent")
ERROR_MODES = ("500", "garbage", "mixed", "throw")


class ConfigError(ValueError):
    """An update named an unknown key or gave a value of the wrong type."""


@dataclass
class SimConfig:
    """How the simulated host behaves. Every field is a key of ``POST /_sim/config``."""

    # Webhooks
    webhook_url: str | None = None
    webhook_ignore: list[str] = field(default_factory=lambda: ["status@broadcast"])
    webhook_timeout_ms: int = 10_000
    # That fraction of webhooks is lost on the way (a gateway, database or network failing
    # for a moment; the host never retries): logged as "dropped", never posted.
    webhook_drop_rate: float = 0.0
    delivery_mode: str = "normal"
    shuffle_window_ms: int = 200
    x_verify_token: str | None = None
    read_message: bool = True
    listen_acks: bool = True
    on_self_message: bool = False
    # Acks after every sent message: 2 (received) then 3 (read); null turns one off.
    auto_ack: bool = True
    ack_received_ms: int | None = 100
    ack_read_ms: int | None = 200
    # Login timing
    init_delay_ms: int = 50
    connect_delay_ms: int = 100
    autoclose_ms: int = 60_000
    qr_refresh_ms: int = 20_000
    unlink_delay_ms: int = 0
    wait_qr_max_ms: int = 300_000
    # Number registry
    unknown_numbers: list[str] = field(default_factory=lambda: ["5511900000000"])
    canonical_numbers: dict[str, str] = field(default_factory=dict)
    # Bug fidelity (WPPCONNECT.md section 8 item 10)
    bug_lost_autoclose: bool = True
    bug_no_session_after_restart: bool = False
    bug_wait_qr_hang_on_restore: bool = False
    bug_start_all_bad_secret: bool = False
    # Fidelity to 2.10.4's source (the package docstring, "Fidelity"). Each is off in the
    # kind profile and on in the real one, except where the comment says otherwise.
    # close-session while pairing leaves the pairing browser running (it can still link).
    orphan_pairing_browser: bool = False
    # Incoming messages from numbers that have a LID (``lid_numbers``) name ``<lid>@lid``.
    lid_senders: bool = False
    lid_numbers: dict[str, str] = field(default_factory=dict)
    # WhatsApp's server fails a number lookup (wa-js answers it as "no account"): a fraction
    # of lookups, or the next N. The status middleware then answers 400 "does not exist".
    number_check_fault_rate: float = 0.0
    number_check_fail_next: int = 0
    # wa-js keeps a lookup that came back empty (no account, or the server failed) this long:
    # every check of that number meanwhile, the middleware's and check-number-status's,
    # answers the same miss (0: not kept).
    number_miss_cache_ms: int = 0
    # WhatsApp's canonical id drops the ninth digit of Brazilian mobiles of area code 31+.
    canonical_br_ninth_digit: bool = False
    # logout-session and clear-session-data leave tokens/<session>.data.json (same in both
    # profiles: the simulator always behaved so; False models a fixed server).
    tokens_survive_logout: bool = True
    # webhook.autoDownload: a media message's ``body`` is the whole file in base64 (both).
    auto_download: bool = True
    # onpresencechanged (composing, then available) around every incoming message.
    presence_events: bool = False
    # Upper bound of the random delay of each POST in the "concurrent" delivery mode.
    concurrent_jitter_ms: int = 50
    # Marking an incoming message seen sends its onack 3 (``id.fromMe`` false).
    incoming_acks: bool = False
    # statusConnection calls next() after its 404/400: the controller runs on, fails to
    # answer twice and the host logs an unhandled rejection (it stays up).
    answer_after_error: bool = False
    # A send waits for WhatsApp's server to take the message (the library's waitForAck): the
    # message is on its way at once, the host answers this long after, and its acks follow
    # (0: at once). A real host takes about a second for a text, longer for a file.
    send_time_ms: int = 0
    # Exit the process (code 70) on such an unhandled rejection, as a host run with
    # --unhandled-rejections=strict would. Off in both profiles: the library's own
    # unhandledRejection handler keeps the real host alive.
    exit_on_unhandled_rejection: bool = False
    # A first message from a sender the session has no encryption session with yet (common
    # for a first message from a non-contact) is emitted at once as type "ciphertext", with no
    # body, and again with the same id once decrypted ``ciphertext_ms`` later (wa-js's
    # chat.new_message, then change:type); get-messages shows it as ciphertext meanwhile.
    ciphertext_first: bool = False
    ciphertext_ms: int = 300
    # get-messages and message-by-id list a chat's notices (an e2e_notification opening a
    # chat, gp2 opening a group), as getMessages serializes notifications; onmessage and
    # onselfmessage never post them (processMessageObj without notifications).
    chat_notices: bool = False
    # A get-messages whose controller throws (a chat not in the store: a non-canonical number)
    # answers 401 {"status": "error", "response": "Error on open list"}; off: 200 and [].
    route_errors_401: bool = False
    # download-media answers 400 "Decrypt file error" to the first this many tries of each
    # file (the CDN or the decryption failing for a moment).
    decrypt_error_tries: int = 0
    # After logout-session the logged-out client's browser runs on this long (the library
    # polls isRegistered each second, then waits a second more), then posts disconnectedMobile,
    # wipes the session's entry whatever it holds by then, and closes (browserClose). A start
    # meanwhile launches a second browser on the same profile, which fails. 0: gone at once.
    logout_close_ms: int = 0
    # With a pairing code, a new code (and its phoneCode webhook) at every QR rotation
    # (``qr_refresh_ms``), as the library asks for one on each auth code change.
    phone_code_rotates: bool = False
    # Tests only (no real host has it): the next N browser launches fail (a crash, out of
    # memory), leaving their entries INITIALIZING for good.
    launch_fail_next: int = 0

    def validate(self) -> None:
        if self.delivery_mode not in DELIVERY_MODES:
            raise ConfigError(f"delivery_mode must be one of {', '.join(DELIVERY_MODES)}")
        for name in (
            "webhook_timeout_ms",
            "shuffle_window_ms",
            "init_delay_ms",
            "connect_delay_ms",
            "autoclose_ms",
            "qr_refresh_ms",
            "unlink_delay_ms",
            "wait_qr_max_ms",
            "ack_received_ms",
            "ack_read_ms",
            "concurrent_jitter_ms",
            "number_check_fail_next",
            "ciphertext_ms",
            "decrypt_error_tries",
            "number_miss_cache_ms",
            "send_time_ms",
            "logout_close_ms",
            "launch_fail_next",
        ):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"{name} must not be negative")
        if not 0.0 <= self.webhook_drop_rate <= 1.0:
            raise ConfigError("webhook_drop_rate must be between 0 and 1")
        if not 0.0 <= self.number_check_fault_rate <= 1.0:
            raise ConfigError("number_check_fault_rate must be between 0 and 1")


# What wppconnect-server 2.10.4 really does, for every fidelity option.
REAL_DEFAULTS: dict[str, Any] = {
    "orphan_pairing_browser": True,
    "lid_senders": True,
    "canonical_br_ninth_digit": True,
    "tokens_survive_logout": True,
    "auto_download": True,
    "read_message": True,
    "presence_events": True,
    "delivery_mode": "concurrent",
    "incoming_acks": True,
    "answer_after_error": True,
    "number_miss_cache_ms": 15_000,
    "send_time_ms": 100,
    "exit_on_unhandled_rejection": False,
    "ciphertext_first": True,
    "chat_notices": True,
    "route_errors_401": True,
    "decrypt_error_tries": 1,
    "logout_close_ms": 1500,
    "phone_code_rotates": True,
    "bug_lost_autoclose": True,
    "bug_no_session_after_restart": True,
    "bug_wait_qr_hang_on_restore": True,
    "bug_start_all_bad_secret": True,
}
# The same keys as the simulator has always behaved (its dataclass defaults).
KIND_DEFAULTS: dict[str, Any] = {
    f.name: (f.default_factory() if callable(f.default_factory) else f.default)
    for f in dataclasses.fields(SimConfig)
    if f.name in REAL_DEFAULTS
}
FIDELITIES: dict[str, dict[str, Any]] = {"kind": KIND_DEFAULTS, "real": REAL_DEFAULTS}
# The profile a simulator starts with and returns to on /_sim/reset.
DEFAULT_FIDELITY = "real"


def with_fidelity(config: SimConfig, fidelity: str) -> SimConfig:
    """``config`` with every fidelity option set as the named profile has it."""
    if fidelity not in FIDELITIES:
        raise ConfigError(f"fidelity must be one of {', '.join(FIDELITIES)}")
    return dataclasses.replace(config, **FIDELITIES[fidelity])


@dataclass
class Faults:
    """Failures injected into ``/api`` requests (``POST /_sim/faults``)."""

    latency_ms: int = 0
    error_rate: float = 0.0
    down: bool = False
    error_mode: str = "500"
    # Only requests with one of these path segments (route names such as "send-message")
    # meet the faults; empty: every /api request does.
    routes: list[str] = field(default_factory=list)

    def applies_to(self, segments: list[str]) -> bool:
        return not self.routes or any(s.lower() in self.routes for s in segments)

    def validate(self) -> None:
        if not 0.0 <= self.error_rate <= 1.0:
            raise ConfigError("error_rate must be between 0 and 1")
        if self.latency_ms < 0:
            raise ConfigError("latency_ms must not be negative")
        if self.error_mode not in ERROR_MODES:
            raise ConfigError(f"error_mode must be one of {', '.join(ERROR_MODES)}")


def _matches(value: Any, hint: Any) -> bool:
    text = str(hint)
    if value is None:
        return "None" in text
    if text.startswith("list"):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if text.startswith("dict"):
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
    if "bool" in text:
        return isinstance(value, bool)
    if "float" in text:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if "int" in text:
        return isinstance(value, int) and not isinstance(value, bool)
    if "str" in text:
        return isinstance(value, str)
    return False


def apply_update[T: (SimConfig, Faults)](current: T, update: Any) -> T:
    """Return a copy of ``current`` with ``update`` (a JSON object) applied and validated."""
    if not isinstance(update, dict):
        raise ConfigError("the body must be a JSON object")
    hints = get_type_hints(type(current))
    known = {f.name for f in dataclasses.fields(current)}
    changes: dict[str, Any] = {}
    if isinstance(current, SimConfig) and "fidelity" in update:
        # The profile first, then the other keys of the same update on top of it.
        fidelity = update["fidelity"]
        if not isinstance(fidelity, str):
            raise ConfigError("fidelity must be a string")
        current = with_fidelity(current, fidelity)  # type: ignore[assignment]
        update = {k: v for k, v in update.items() if k != "fidelity"}
    for key, value in update.items():
        if key not in known:
            raise ConfigError(f"unknown key: {key}")
        if not _matches(value, hints[key]):
            raise ConfigError(f"wrong type for {key}: expected {hints[key]}")
        if isinstance(value, float) and "float" in str(hints[key]):
            value = float(value)
        changes[key] = value
    updated = dataclasses.replace(current, **changes)
    if isinstance(updated, SimConfig | Faults):
        updated.validate()
    return updated


class Settings:
    """The live configuration and faults, swapped atomically and readable from any thread."""

    def __init__(self, initial: SimConfig) -> None:
        self._initial = initial
        self._lock = threading.Lock()
        self._config = dataclasses.replace(initial)
        self._faults = Faults()

    @property
    def config(self) -> SimConfig:
        return self._config

    @property
    def faults(self) -> Faults:
        return self._faults

    def update_config(self, update: Any) -> SimConfig:
        with self._lock:
            self._config = apply_update(self._config, update)
            return self._config

    def draw_number_check_fault(self) -> bool:
        """Whether this existence check throws: the next of ``number_check_fail_next``
        (counted down) or a draw against ``number_check_fault_rate``."""
        with self._lock:
            pending = self._config.number_check_fail_next
            if pending > 0:
                self._config = dataclasses.replace(self._config, number_check_fail_next=pending - 1)
                return True
            rate = self._config.number_check_fault_rate
        return rate > 0 and random.random() < rate

    def take_launch_failure(self) -> bool:
        """Whether this browser launch fails: the next of ``launch_fail_next``, counted down."""
        with self._lock:
            pending = self._config.launch_fail_next
            if pending > 0:
                self._config = dataclasses.replace(self._config, launch_fail_next=pending - 1)
            return pending > 0

    def update_faults(self, update: Any) -> Faults:
        with self._lock:
            self._faults = apply_update(self._faults, update)
            return self._faults

    def reset(self) -> None:
        with self._lock:
            self._config = dataclasses.replace(self._initial)
            self._faults = Faults()
