"""Configuration: read once per container from the environment, validated at start-up.

Secret values may also come from one AWS Secrets Manager secret (a JSON object keyed by the
same names), named by ``SECRETS_ARN``; the environment wins where both are set. Each function
declares which settings it needs (its ``needs``, a typo in which fails at import); a missing
or malformed one stops the function at start-up with one log line naming it, never its value
(the check of each need is in ``wa_gateway.needs``). Values derived from settings (the
keyring, the token issuer, the JWKS URL) are computed here and nowhere else.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

from wa_gateway.crypto import Keyring
from wa_gateway.errors import SettingsError

SECRET_NAMES = (
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_JWT_SECRET",
    "WPP_SECRET_KEY",
    "QR_WEBHOOK_VERIFY_TOKEN",
    "ENCRYPTION_KEY",
    "DATABASE_URL",
)

SUPABASE_STATEMENT_TIMEOUT_S = 8.0
"""The statement timeout of a call through Supabase's REST API, which the gateway cannot set:
the ``authenticated`` role's, and the ``authenticator`` login's that ``service_role`` keeps."""
DB_HTTP_MARGIN_S = 2.0
"""How much longer than a statement may run the REST client waits: the commit and the trip."""

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(name: str, value: str) -> int:
    """Seconds in '90', '90s', '15m', '24h' or '7d'."""
    match = _DURATION.match(value)
    if not match:
        raise SettingsError(f"{name} must be a duration such as 90s, 15m, 24h or 7d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _positive(
    name: str, value: str | None, default: float, what: str = "a positive number"
) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = 0
    if not (number > 0 and math.isfinite(number)):
        raise SettingsError(f"{name} must be {what}")
    return number


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _text(name: str, value: str | None, default: str | None) -> str | None:
    return default if value is None else value


def _url(name: str, value: str | None, default: str | None) -> str | None:
    """Without the trailing slash."""
    return (value or "").rstrip("/") or default


def _names(name: str, value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list."""
    return default if value is None else _split(value)


def _flag(name: str, value: str | None, default: bool) -> bool:
    return default if value is None else value.lower() in {"1", "true", "yes", "on"}


def _duration(name: str, value: str | None, default: int) -> int:
    return default if value is None else parse_duration(name, value)


def _wait(name: str, value: str | None, default: int) -> int:
    """A duration of at least a second (0 reads as 1): something waited for between tries."""
    return max(1, _duration(name, value, default))


def _seconds(name: str, value: str | None, default: float) -> float:
    return _positive(name, value, default, "a positive number of seconds, such as 5")


def _count(name: str, value: str | None, default: int) -> int:
    number = _positive(name, value, default, "a positive whole number")
    if number != int(number):
        raise SettingsError(f"{name} must be a positive whole number")
    return int(number)


def _env[T](
    name: str, read: Callable[[str, str | None, Any], Any], default: T, *, secret: bool = False
) -> T:
    """A field read from the environment variable ``name``: ``read`` turns its value (None
    where it is not set or blank) into the field's, ``default`` where it is not set, or raises
    SettingsError naming it. A secret one is kept out of the repr."""
    return field(default=default, repr=not secret, metadata={"env": name, "read": read})


def _read_env(cls: type[Any], get: Callable[[str], str | None]) -> dict[str, Any]:
    """The value of each field of the dataclass ``cls`` declared with ``_env``, by name."""
    values = {}
    for spec in fields(cls):
        if "env" in spec.metadata:
            name, read = spec.metadata["env"], spec.metadata["read"]
            values[spec.name] = read(name, get(name), spec.default)
    return values


@dataclass(frozen=True)
class DeliveryPolicy:
    """How the delivery worker posts events to users' endpoints: the ``DELIVERY_*`` settings,
    ``ALLOW_LOCAL_ENDPOINTS`` (which also governs registering an endpoint), how long a
    delivery is kept (``EVENT_RETENTION``), and the worker's batch sizes."""

    timeout_s: float = _env("DELIVERY_TIMEOUT", _seconds, 10.0)
    retry_base_s: int = _env("DELIVERY_RETRY_BASE", _wait, 5)
    retry_max_s: int = _env("DELIVERY_RETRY_MAX", _wait, 3600)
    retry_for_s: int = _env("DELIVERY_RETRY_FOR", _duration, 3 * 86400)
    lease_s: int = _env("DELIVERY_LEASE", _wait, 60)
    concurrency: int = _env("DELIVERY_CONCURRENCY", _count, 8)
    allow_local: bool = _env("ALLOW_LOCAL_ENDPOINTS", _flag, False)
    retention_s: int = 30 * 86400  # EVENT_RETENTION, as Settings.load reads it
    batch: int = 20
    batches_per_claim: int = 10


@dataclass(frozen=True)
class Settings:
    """Every setting a function may use, each with the environment variable it is read from
    and its default. Build with ``Settings.load``."""

    supabase_url: str | None = _env("SUPABASE_URL", _url, None)
    supabase_service_role_key: str | None = _env(
        "SUPABASE_SERVICE_ROLE_KEY", _text, None, secret=True
    )
    # The legacy SUPABASE_ANON_KEY serves where this is not set.
    supabase_publishable_key: str | None = _env(
        "SUPABASE_PUBLISHABLE_KEY", _text, None, secret=True
    )
    supabase_jwt_secrets: tuple[str, ...] = _env("SUPABASE_JWT_SECRET", _names, (), secret=True)
    # The three below follow the Supabase URL unless set.
    supabase_jwks_url: str | None = _env("SUPABASE_JWKS_URL", _text, None)
    supabase_jwt_issuer: str | None = _env("SUPABASE_JWT_ISSUER", _text, None)
    supabase_storage_url: str | None = _env("SUPABASE_STORAGE_URL", _url, None)
    database_url: str | None = _env("DATABASE_URL", _text, None, secret=True)
    wpp_server_url: str | None = _env("WPP_SERVER_URL", _url, None)
    wpp_secret_key: str | None = _env("WPP_SECRET_KEY", _text, None, secret=True)
    webhook_verify_tokens: tuple[str, ...] = _env(
        "QR_WEBHOOK_VERIFY_TOKEN", _names, (), secret=True
    )
    encryption_key: str | None = _env("ENCRYPTION_KEY", _text, None, secret=True)
    webhook_public_url: str | None = _env("WEBHOOK_PUBLIC_URL", _text, None)
    allowed_origins: tuple[str, ...] = _env("ALLOWED_ORIGINS", _names, ())
    qr_first_ttl_s: int = _env("QR_FIRST_TTL", _duration, 60)
    qr_next_ttl_s: int = _env("QR_NEXT_TTL", _duration, 20)
    qr_ttl_s: int = _env("QR_TTL", _duration, 24 * 3600)
    stale_after_s: int = _env("STALE_AFTER", _duration, 7 * 86400)
    host_connect_timeout_s: float = _env("WPP_CONNECT_TIMEOUT", _seconds, 3.05)
    host_read_timeout_s: float = _env("WPP_READ_TIMEOUT", _seconds, 10.0)
    host_start_timeout_s: float = _env("WPP_START_TIMEOUT", _seconds, 20.0)
    start_stuck_after_s: int = _env("START_STUCK_AFTER", _duration, 90)
    db_timeout_s: float = _env("DB_TIMEOUT", _seconds, 5.0)
    send_burst: float = _env("SEND_BURST", _positive, 10)
    send_rate_per_minute: float = _env("SEND_RATE_PER_MINUTE", _positive, 20)
    send_lease_s: int = _env("SEND_LEASE", _duration, 30)
    max_accounts_per_user: int = _env("MAX_ACCOUNTS_PER_USER", _count, 3)
    max_scheduled_per_user: int = _env("MAX_SCHEDULED_PER_USER", _count, 1000)
    event_retention_s: int = _env("EVENT_RETENTION", _duration, 30 * 86400)
    drain_idle_after_s: int = _env("DRAIN_IDLE_AFTER", _duration, 3600)
    schedule_grace_s: int = _env("SCHEDULE_GRACE", _duration, 3600)
    reconcile_concurrency: int = _env("RECONCILE_CONCURRENCY", _count, 4)
    reconcile_ack_window_s: int = _env("RECONCILE_ACK_WINDOW", _duration, 24 * 3600)
    reconcile_chats_per_session: int = _env("RECONCILE_CHATS_PER_SESSION", _count, 100)
    reconcile_lookups_per_session: int = _env("RECONCILE_LOOKUPS_PER_SESSION", _count, 50)
    media_function: str | None = _env("MEDIA_FUNCTION", _text, None)
    media_fetch_attempts: int = _env("MEDIA_FETCH_ATTEMPTS", _count, 5)
    media_retry_after_s: int = _env("MEDIA_RETRY_AFTER", _wait, 30)
    message_retention_s: int = _env("MESSAGE_RETENTION", _duration, 0)  # 0: kept
    backfill_on_link: bool = _env("BACKFILL_ON_LINK", _flag, False)
    # Group messages are conversations of their own: kept unless turned off.
    inbound_groups: bool = _env("INBOUND_GROUPS", _flag, True)
    inbound_status_broadcasts: bool = _env("INBOUND_STATUS_BROADCASTS", _flag, False)
    allow_anonymous_users: bool = _env("ALLOW_ANONYMOUS_USERS", _flag, False)
    api_key_burst: float = _env("API_KEY_BURST", _positive, 60)
    api_key_rate_per_minute: float = _env("API_KEY_RATE_PER_MINUTE", _positive, 300)
    max_api_keys: int = _env("MAX_API_KEYS", _count, 20)
    max_endpoints: int = _env("MAX_ENDPOINTS", _count, 10)
    delivery_function: str | None = _env("DELIVERY_FUNCTION", _text, None)
    delivery: DeliveryPolicy = DeliveryPolicy()
    version: str = _env("GATEWAY_VERSION", _text, "dev")

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        fetch_secrets: Callable[[str], Mapping[str, Any]] | None = None,
    ) -> Settings:
        env: dict[str, str] = dict(os.environ if environ is None else environ)
        arn = env.get("SECRETS_ARN")
        if arn:
            if fetch_secrets is None:
                from wa_gateway.aws_secrets import read_secret_json

                secrets = read_secret_json(arn, env)
            else:
                secrets = fetch_secrets(arn)
            for name in SECRET_NAMES:
                value = secrets.get(name)
                if value and not env.get(name):
                    env[name] = str(value)

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        values = _read_env(cls, get)
        values["supabase_publishable_key"] = values["supabase_publishable_key"] or get(
            "SUPABASE_ANON_KEY"
        )
        if supabase_url := values["supabase_url"]:
            auth_url = f"{supabase_url}/auth/v1"
            values["supabase_jwks_url"] = (
                values["supabase_jwks_url"] or f"{auth_url}/.well-known/jwks.json"
            )
            values["supabase_jwt_issuer"] = values["supabase_jwt_issuer"] or auth_url
            values["supabase_storage_url"] = (
                values["supabase_storage_url"] or f"{supabase_url}/storage/v1"
            )
        delivery = DeliveryPolicy(
            retention_s=values["event_retention_s"], **_read_env(DeliveryPolicy, get)
        )
        return cls(**values, delivery=delivery)

    @property
    def db_http_timeout_s(self) -> float:
        """The REST client's read timeout: above the longest a statement may run through the
        REST API (``DB_TIMEOUT`` or Supabase's own statement timeout, whichever is longer),
        so the client never gives up on a call the database can still commit."""
        return max(self.db_timeout_s, SUPABASE_STATEMENT_TIMEOUT_S) + DB_HTTP_MARGIN_S

    @cached_property
    def keyring(self) -> Keyring:
        """The keys of ``ENCRYPTION_KEY``; SettingsError if it is not set or not valid."""
        if not self.encryption_key:
            raise SettingsError("ENCRYPTION_KEY must be set")
        try:
            return Keyring.from_setting(self.encryption_key)
        except ValueError as exc:
            raise SettingsError(f"ENCRYPTION_KEY is not valid: {exc}") from None

    @property
    def keyring_if_set(self) -> Keyring | None:
        """The keyring, or None without ``ENCRYPTION_KEY`` (for parts that can do without)."""
        return self.keyring if self.encryption_key else None
