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
from dataclasses import dataclass, field
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


def _flag(value: str | None) -> bool:
    return (value or "").lower() in {"1", "true", "yes", "on"}


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class DeliveryPolicy:
    """How the delivery worker posts events to users' endpoints: the ``DELIVERY_*`` settings,
    ``ALLOW_LOCAL_ENDPOINTS`` (which also governs registering an endpoint), how long a
    delivery is kept (``EVENT_RETENTION``), and the worker's batch sizes."""

    timeout_s: float = 10.0
    retry_base_s: int = 5
    retry_max_s: int = 3600
    retry_for_s: int = 3 * 86400
    lease_s: int = 60
    concurrency: int = 8
    allow_local: bool = False
    retention_s: int = 30 * 86400
    batch: int = 20
    batches_per_claim: int = 10


@dataclass(frozen=True)
class Settings:
    """Every setting a function may use. Build with ``Settings.load``."""

    supabase_url: str | None = None
    supabase_service_role_key: str | None = field(default=None, repr=False)
    supabase_publishable_key: str | None = field(default=None, repr=False)
    supabase_jwt_secrets: tuple[str, ...] = field(default=(), repr=False)
    supabase_jwks_url: str | None = None
    supabase_jwt_issuer: str | None = None
    supabase_storage_url: str | None = None
    database_url: str | None = field(default=None, repr=False)
    wpp_server_url: str | None = None
    wpp_secret_key: str | None = field(default=None, repr=False)
    webhook_verify_tokens: tuple[str, ...] = field(default=(), repr=False)
    encryption_key: str | None = field(default=None, repr=False)
    webhook_public_url: str | None = None
    allowed_origins: tuple[str, ...] = ()
    qr_first_ttl_s: int = 60
    qr_next_ttl_s: int = 20
    qr_ttl_s: int = 24 * 3600
    stale_after_s: int = 7 * 86400
    host_connect_timeout_s: float = 3.05
    host_read_timeout_s: float = 10.0
    host_start_timeout_s: float = 20.0
    start_stuck_after_s: int = 90
    db_timeout_s: float = 5.0
    send_burst: float = 10
    send_rate_per_minute: float = 20
    send_lease_s: int = 30
    max_accounts_per_user: int = 3
    max_scheduled_per_user: int = 1000
    event_retention_s: int = 30 * 86400
    drain_idle_after_s: int = 3600
    schedule_grace_s: int = 3600
    reconcile_concurrency: int = 4
    reconcile_ack_window_s: int = 24 * 3600
    reconcile_chats_per_session: int = 100
    reconcile_lookups_per_session: int = 50
    media_function: str | None = None
    media_fetch_attempts: int = 5
    media_retry_after_s: int = 30
    message_retention_s: int = 0
    backfill_on_link: bool = False
    inbound_groups: bool = True
    inbound_status_broadcasts: bool = False
    allow_anonymous_users: bool = False
    api_key_burst: float = 60
    api_key_rate_per_minute: float = 300
    max_api_keys: int = 20
    max_endpoints: int = 10
    delivery_function: str | None = None
    delivery: DeliveryPolicy = DeliveryPolicy()
    version: str = "dev"

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

        def duration(name: str, default: int) -> int:
            value = get(name)
            return default if value is None else parse_duration(name, value)

        def seconds(name: str, default: float) -> float:
            return _positive(name, get(name), default, "a positive number of seconds, such as 5")

        def count(name: str, default: int) -> int:
            value = _positive(name, get(name), default, "a positive whole number")
            if value != int(value):
                raise SettingsError(f"{name} must be a positive whole number")
            return int(value)

        supabase_url = (get("SUPABASE_URL") or "").rstrip("/") or None
        auth_url = f"{supabase_url}/auth/v1" if supabase_url else None
        jwks_url = get("SUPABASE_JWKS_URL")
        if jwks_url is None and auth_url:
            jwks_url = f"{auth_url}/.well-known/jwks.json"
        event_retention_s = duration("EVENT_RETENTION", 30 * 86400)
        return cls(
            supabase_url=supabase_url,
            supabase_service_role_key=get("SUPABASE_SERVICE_ROLE_KEY"),
            supabase_publishable_key=get("SUPABASE_PUBLISHABLE_KEY") or get("SUPABASE_ANON_KEY"),
            supabase_jwt_secrets=_split(get("SUPABASE_JWT_SECRET") or ""),
            supabase_jwks_url=jwks_url,
            supabase_jwt_issuer=get("SUPABASE_JWT_ISSUER") or auth_url,
            supabase_storage_url=(get("SUPABASE_STORAGE_URL") or "").rstrip("/")
            or (f"{supabase_url}/storage/v1" if supabase_url else None),
            database_url=get("DATABASE_URL"),
            wpp_server_url=(get("WPP_SERVER_URL") or "").rstrip("/") or None,
            wpp_secret_key=get("WPP_SECRET_KEY"),
            webhook_verify_tokens=_split(get("QR_WEBHOOK_VERIFY_TOKEN") or ""),
            encryption_key=get("ENCRYPTION_KEY"),
            webhook_public_url=get("WEBHOOK_PUBLIC_URL"),
            allowed_origins=_split(get("ALLOWED_ORIGINS") or ""),
            qr_first_ttl_s=duration("QR_FIRST_TTL", 60),
            qr_next_ttl_s=duration("QR_NEXT_TTL", 20),
            qr_ttl_s=duration("QR_TTL", 24 * 3600),
            stale_after_s=duration("STALE_AFTER", 7 * 86400),
            host_connect_timeout_s=seconds("WPP_CONNECT_TIMEOUT", 3.05),
            host_read_timeout_s=seconds("WPP_READ_TIMEOUT", 10.0),
            host_start_timeout_s=seconds("WPP_START_TIMEOUT", 20.0),
            start_stuck_after_s=duration("START_STUCK_AFTER", 90),
            db_timeout_s=seconds("DB_TIMEOUT", 5.0),
            send_burst=_positive("SEND_BURST", get("SEND_BURST"), 10),
            send_rate_per_minute=_positive("SEND_RATE_PER_MINUTE", get("SEND_RATE_PER_MINUTE"), 20),
            send_lease_s=duration("SEND_LEASE", 30),
            max_accounts_per_user=count("MAX_ACCOUNTS_PER_USER", 3),
            max_scheduled_per_user=count("MAX_SCHEDULED_PER_USER", 1000),
            event_retention_s=event_retention_s,
            drain_idle_after_s=duration("DRAIN_IDLE_AFTER", 3600),
            schedule_grace_s=duration("SCHEDULE_GRACE", 3600),
            reconcile_concurrency=count("RECONCILE_CONCURRENCY", 4),
            reconcile_ack_window_s=duration("RECONCILE_ACK_WINDOW", 24 * 3600),
            reconcile_chats_per_session=count("RECONCILE_CHATS_PER_SESSION", 100),
            reconcile_lookups_per_session=count("RECONCILE_LOOKUPS_PER_SESSION", 50),
            media_function=get("MEDIA_FUNCTION"),
            media_fetch_attempts=count("MEDIA_FETCH_ATTEMPTS", 5),
            media_retry_after_s=max(1, duration("MEDIA_RETRY_AFTER", 30)),
            message_retention_s=duration("MESSAGE_RETENTION", 0),
            backfill_on_link=_flag(get("BACKFILL_ON_LINK")),
            # Group messages are conversations of their own: kept unless turned off.
            inbound_groups=_flag(get("INBOUND_GROUPS") or "true"),
            inbound_status_broadcasts=_flag(get("INBOUND_STATUS_BROADCASTS")),
            allow_anonymous_users=_flag(get("ALLOW_ANONYMOUS_USERS")),
            api_key_burst=_positive("API_KEY_BURST", get("API_KEY_BURST"), 60),
            api_key_rate_per_minute=_positive(
                "API_KEY_RATE_PER_MINUTE", get("API_KEY_RATE_PER_MINUTE"), 300
            ),
            max_api_keys=count("MAX_API_KEYS", 20),
            max_endpoints=count("MAX_ENDPOINTS", 10),
            delivery_function=get("DELIVERY_FUNCTION"),
            delivery=DeliveryPolicy(
                timeout_s=seconds("DELIVERY_TIMEOUT", 10.0),
                retry_base_s=max(1, duration("DELIVERY_RETRY_BASE", 5)),
                retry_max_s=max(1, duration("DELIVERY_RETRY_MAX", 3600)),
                retry_for_s=duration("DELIVERY_RETRY_FOR", 3 * 86400),
                lease_s=max(1, duration("DELIVERY_LEASE", 60)),
                concurrency=count("DELIVERY_CONCURRENCY", 8),
                allow_local=_flag(get("ALLOW_LOCAL_ENDPOINTS")),
                retention_s=event_retention_s,
            ),
            version=get("GATEWAY_VERSION") or "dev",
        )

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
