"""Settings: read once, checked, and never shown."""

from __future__ import annotations

import pytest

from wa_gateway.settings import Settings, SettingsError, parse_duration

KEY = "a" * 64
BASE = {
    "DATABASE_URL": "postgresql://u:pw@h/db",
    "SUPABASE_JWT_SECRET": "s" * 40,
    "WPP_SERVER_URL": "http://host:21465/",
    "WPP_SECRET_KEY": "wpp-secret",
    "QR_WEBHOOK_VERIFY_TOKEN": "verify-1, verify-2",
    "ENCRYPTION_KEY": KEY,
    "WEBHOOK_PUBLIC_URL": "https://x.lambda-url.on.aws/",
}
ALL = ("store", "tokens", "host", "webhook", "crypto")


def test_a_complete_environment_passes() -> None:
    settings = Settings.load(BASE).require(ALL)
    assert settings.wpp_server_url == "http://host:21465"
    assert settings.webhook_verify_tokens == ("verify-1", "verify-2")
    assert settings.keyring.active_key_id == "k1"


@pytest.mark.parametrize(
    ("missing", "need"),
    [
        ("DATABASE_URL", "store"),
        ("SUPABASE_JWT_SECRET", "tokens"),
        ("WPP_SERVER_URL", "host"),
        ("WPP_SECRET_KEY", "host"),
        ("WEBHOOK_PUBLIC_URL", "host"),
        ("QR_WEBHOOK_VERIFY_TOKEN", "webhook"),
        ("ENCRYPTION_KEY", "crypto"),
    ],
)
def test_a_missing_setting_is_named(missing: str, need: str) -> None:
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        Settings.load(env).require([need])


def test_a_bad_key_is_reported_without_its_value() -> None:
    env = {**BASE, "ENCRYPTION_KEY": "zz" * 32}
    with pytest.raises(SettingsError) as caught:
        Settings.load(env).require(["crypto"])
    assert "zz" * 8 not in str(caught.value)


def test_a_short_jwt_secret_is_refused() -> None:
    with pytest.raises(SettingsError, match="32 bytes"):
        Settings.load({**BASE, "SUPABASE_JWT_SECRET": "short"}).require(["tokens"])


def test_secrets_can_come_from_secrets_manager() -> None:
    env = {k: v for k, v in BASE.items() if k not in ("WPP_SECRET_KEY", "ENCRYPTION_KEY")}
    env["SECRETS_ARN"] = "arn:aws:secretsmanager:eu-west-1:1:secret:gw"
    asked: list[str] = []

    def fetch(arn: str) -> dict[str, str]:
        asked.append(arn)
        return {"WPP_SECRET_KEY": "from-sm", "ENCRYPTION_KEY": KEY, "DATABASE_URL": "ignored"}

    settings = Settings.load(env, fetch_secrets=fetch).require(ALL)
    assert asked == [env["SECRETS_ARN"]]
    assert settings.wpp_secret_key == "from-sm"
    assert settings.database_url == BASE["DATABASE_URL"]  # the environment wins


def test_the_jwks_url_follows_the_supabase_url() -> None:
    settings = Settings.load({"SUPABASE_URL": "https://ref.supabase.co/"})
    assert settings.supabase_jwks_url == "https://ref.supabase.co/auth/v1/.well-known/jwks.json"


def test_repr_shows_no_secret() -> None:
    text = repr(Settings.load(BASE))
    for name in ("SUPABASE_JWT_SECRET", "WPP_SECRET_KEY", "ENCRYPTION_KEY", "DATABASE_URL"):
        assert BASE[name] not in text
    assert "verify-1" not in text


@pytest.mark.parametrize(
    ("raw", "seconds"), [("90", 90), ("15m", 900), ("24h", 86400), ("7d", 604800)]
)
def test_durations(raw: str, seconds: int) -> None:
    assert parse_duration("X", raw) == seconds


def test_a_bad_duration_is_named() -> None:
    with pytest.raises(SettingsError, match="QR_TTL"):
        Settings.load({"QR_TTL": "soon"})
