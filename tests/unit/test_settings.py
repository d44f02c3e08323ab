"""Settings: read once, checked, and never shown."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from wa_gateway import runtime
from wa_gateway.settings import Settings, SettingsError, parse_duration

KEY = "a" * 64
BASE = {
    "DATABASE_URL": "postgresql://u:pw@h/db",
    "SUPABASE_JWT_SECRET": "s" * 40,
    "WPP_SERVER_URL": "http://host:21465/",
    "WPP_SECRET_KEY": "wpp-secret-" + "w" * 32,
    "QR_WEBHOOK_VERIFY_TOKEN": "verify-1, verify-2",
    "ENCRYPTION_KEY": KEY,
    "WEBHOOK_PUBLIC_URL": "https://x.lambda-url.on.aws/",
}
ALL = ("store", "tokens", "host", "webhook", "crypto")
SM_SECRET = "from-secrets-manager-" + "m" * 32


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


def test_a_wpp_secret_key_bcrypt_would_mostly_ignore_is_refused() -> None:
    with pytest.raises(SettingsError, match="WPP_SECRET_KEY must be at least 32 bytes"):
        Settings.load({**BASE, "WPP_SECRET_KEY": "k" * 31}).require(["host"])
    Settings.load({**BASE, "WPP_SECRET_KEY": "k" * 32}).require(["host"])


def test_secrets_can_come_from_secrets_manager() -> None:
    env = {k: v for k, v in BASE.items() if k not in ("WPP_SECRET_KEY", "ENCRYPTION_KEY")}
    env["SECRETS_ARN"] = "arn:aws:secretsmanager:eu-west-1:1:secret:gw"
    asked: list[str] = []

    def fetch(arn: str) -> dict[str, str]:
        asked.append(arn)
        return {"WPP_SECRET_KEY": SM_SECRET, "ENCRYPTION_KEY": KEY, "DATABASE_URL": "ignored"}

    settings = Settings.load(env, fetch_secrets=fetch).require(ALL)
    assert asked == [env["SECRETS_ARN"]]
    assert settings.wpp_secret_key == SM_SECRET
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


# --- what a function needs ------------------------------------------------------------------


def test_an_unknown_need_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'stroe'"):
        Settings.load(BASE).require(["store", "stroe"])  # type: ignore[list-item]


@pytest.fixture()
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, str]], None]]:
    """Sets the process environment to exactly the settings given, with nothing built yet."""

    def use(env: dict[str, str]) -> None:
        for name in list(os.environ):
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        runtime.reset()

    yield use
    runtime.reset()


def test_an_unknown_need_fails_before_the_environment_is_read(
    environment: Callable[[dict[str, str]], None],
) -> None:
    environment({"QR_TTL": "soon"})  # would stop the function, were it read
    with pytest.raises(ValueError, match="'tokns'"):
        runtime.configure("status", ["store", "tokns"])  # type: ignore[list-item]
    assert runtime.settings.cache_info().currsize == 0


@pytest.mark.parametrize(
    ("env", "named", "value"),
    [
        ({k: v for k, v in BASE.items() if k != "WPP_SERVER_URL"}, "WPP_SERVER_URL", None),
        ({**BASE, "WPP_CONNECT_TIMEOUT": "3s"}, "WPP_CONNECT_TIMEOUT", "3s"),
        ({**BASE, "WPP_READ_TIMEOUT": "ten"}, "WPP_READ_TIMEOUT", "ten"),
        ({**BASE, "WPP_START_TIMEOUT": "-20"}, "WPP_START_TIMEOUT", "-20"),
        ({**BASE, "DB_TIMEOUT": "nan"}, "DB_TIMEOUT", "nan"),
    ],
    ids=["missing", "unit", "word", "negative", "nan"],
)
def test_a_missing_or_bad_setting_stops_the_function_with_one_line_naming_it(
    environment: Callable[[dict[str, str]], None],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    named: str,
    value: str | None,
) -> None:
    environment(env)
    logged: list[str] = []
    monkeypatch.setattr(runtime.logger, "error", lambda message, **_: logged.append(message))
    with pytest.raises(SystemExit) as stopped:
        runtime.configure("status", ["store", "tokens", "host", "crypto"])
    assert stopped.value.code == 1
    [line] = logged
    assert line.startswith(f"status cannot start: {named} ")
    assert value is None or value not in line


def test_a_timeout_with_a_unit_is_told_to_be_plain_seconds() -> None:
    with pytest.raises(SettingsError, match="WPP_CONNECT_TIMEOUT must be a positive number of sec"):
        Settings.load({**BASE, "WPP_CONNECT_TIMEOUT": "3s"})


def test_timeouts_are_seconds() -> None:
    settings = Settings.load({**BASE, "WPP_CONNECT_TIMEOUT": "2.5", "DB_TIMEOUT": "7"})
    assert (settings.host_connect_timeout_s, settings.db_timeout_s) == (2.5, 7.0)
    assert Settings.load(BASE).host_read_timeout_s == 10.0


# --- values derived from settings -----------------------------------------------------------


def test_the_issuer_follows_the_supabase_url_unless_set() -> None:
    derived = Settings.load({"SUPABASE_URL": "https://ref.supabase.co/"})
    assert derived.supabase_jwt_issuer == "https://ref.supabase.co/auth/v1"
    given = Settings.load(
        {"SUPABASE_URL": "https://ref.supabase.co", "SUPABASE_JWT_ISSUER": "https://auth.example"}
    )
    assert given.supabase_jwt_issuer == "https://auth.example"
    assert Settings.load({}).supabase_jwt_issuer is None


def test_a_set_jwks_url_wins_over_the_derived_one() -> None:
    settings = Settings.load(
        {"SUPABASE_URL": "https://ref.supabase.co", "SUPABASE_JWKS_URL": "https://keys.example"}
    )
    assert settings.supabase_jwks_url == "https://keys.example"


def test_the_keyring_is_optional_until_required() -> None:
    without = Settings.load({k: v for k, v in BASE.items() if k != "ENCRYPTION_KEY"})
    assert without.keyring_if_set is None
    with pytest.raises(SettingsError, match="ENCRYPTION_KEY"):
        _ = without.keyring
    settings = Settings.load(BASE)
    assert settings.keyring_if_set is settings.keyring


def test_the_functions_verify_tokens_against_the_derived_issuer(
    environment: Callable[[dict[str, str]], None],
) -> None:
    environment({**BASE, "SUPABASE_URL": "https://ref.supabase.co"})
    verifier = repr(runtime.token_verifier())
    assert "issuer='https://ref.supabase.co/auth/v1'" in verifier
    assert "jwks_url='https://ref.supabase.co/auth/v1/.well-known/jwks.json'" in verifier
