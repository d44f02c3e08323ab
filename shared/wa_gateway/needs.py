"""What a function may need of the settings (``Need``), and the check, per need, that the
settings hold it well-formed: run once at a function's start-up (``require``), each failure a
SettingsError naming the setting, never its value."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, cast, get_args

from wa_gateway.errors import SettingsError
from wa_gateway.settings import Settings

Need = Literal["store", "tokens", "host", "webhook", "crypto", "media"]
"""What a function may need: the database, token checks, the host, the webhook's proof, the
encryption key, Supabase Storage (for media)."""
NEEDS: tuple[Need, ...] = get_args(Need)

# The host's tokens are bcrypt(session name + secret key), and bcrypt reads only 72 bytes: with
# session names of at most 40 bytes (sessions.accounts.session_name_for), 32 bytes of the key count.
MIN_HOST_SECRET_BYTES = 32


def require(settings: Settings, needs: Iterable[Need]) -> Settings:
    """Check that what a function needs is present and well-formed; return ``settings``.

    ``needs`` holds any of ``NEEDS``; anything else is a ValueError.
    """
    for need in known_needs(needs):
        _CHECKS[need](settings)
    return settings


def known_needs(needs: Iterable[str]) -> tuple[Need, ...]:
    """``needs`` as given, if each is one of ``NEEDS``; a ValueError naming the first that is
    not (a mistake in the code, not in the environment)."""
    given = tuple(needs)
    for need in given:
        if need not in NEEDS:
            raise ValueError(f"unknown need {need!r}: each must be one of {', '.join(NEEDS)}")
    return cast(tuple[Need, ...], given)


def is_secret_api_key(key: str) -> bool:
    """A Supabase secret key (``sb_secret_...``): not a JWT, so never a Bearer token."""
    return key.startswith("sb_secret_")


def check_host_secret_key(name: str, value: str) -> None:
    """Refuse a host secret key too short to make the host's tokens hard to forge."""
    if len(value.encode()) < MIN_HOST_SECRET_BYTES:
        raise SettingsError(f"{name} must be at least {MIN_HOST_SECRET_BYTES} bytes long")


def _store(settings: Settings) -> None:
    if settings.database_url:
        return
    service_key = settings.supabase_service_role_key
    if not (settings.supabase_url and service_key):
        raise SettingsError(
            "DATABASE_URL, or SUPABASE_URL with SUPABASE_SERVICE_ROLE_KEY, must be set"
        )
    # Through the REST API, user reads carry the publishable key, never the service key.
    publishable = settings.supabase_publishable_key
    if not publishable:
        raise SettingsError("SUPABASE_PUBLISHABLE_KEY must be set with SUPABASE_URL")
    if is_secret_api_key(publishable) or publishable == service_key:
        raise SettingsError("SUPABASE_PUBLISHABLE_KEY must be the publishable (or anon) key")
    if service_key.startswith("sb_publishable_"):
        raise SettingsError("SUPABASE_SERVICE_ROLE_KEY must be a secret or service-role key")


def _tokens(settings: Settings) -> None:
    if not (settings.supabase_jwt_secrets or settings.supabase_jwks_url):
        raise SettingsError("SUPABASE_JWT_SECRET or SUPABASE_JWKS_URL must be set")
    if any(len(secret.encode()) < 32 for secret in settings.supabase_jwt_secrets):
        raise SettingsError("SUPABASE_JWT_SECRET must be at least 32 bytes long")


def _host(settings: Settings) -> None:
    if not settings.wpp_server_url:
        raise SettingsError("WPP_SERVER_URL must be set")
    if not settings.wpp_secret_key:
        raise SettingsError("WPP_SECRET_KEY must be set")
    check_host_secret_key("WPP_SECRET_KEY", settings.wpp_secret_key)
    if not settings.webhook_public_url:
        raise SettingsError("WEBHOOK_PUBLIC_URL must be set")


def _webhook(settings: Settings) -> None:
    if not settings.webhook_verify_tokens:
        raise SettingsError("QR_WEBHOOK_VERIFY_TOKEN must be set")


def _media(settings: Settings) -> None:
    if not (settings.supabase_storage_url and settings.supabase_service_role_key):
        raise SettingsError(
            "SUPABASE_STORAGE_URL (or SUPABASE_URL) and SUPABASE_SERVICE_ROLE_KEY must be set"
        )


def _crypto(settings: Settings) -> None:
    if not settings.encryption_key:
        raise SettingsError("ENCRYPTION_KEY must be set")
    _ = settings.keyring  # a malformed key fails here, at start-up


_CHECKS: dict[Need, Callable[[Settings], None]] = {
    "store": _store,
    "tokens": _tokens,
    "host": _host,
    "webhook": _webhook,
    "crypto": _crypto,
    "media": _media,
}
