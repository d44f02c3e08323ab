"""Settings: read once, checked, and never shown."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wa_gateway import runtime, services
from wa_gateway.needs import require
from wa_gateway.settings import (
    SUPABASE_STATEMENT_TIMEOUT_S,
    Settings,
    SettingsError,
    parse_duration,
)

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
    settings = require(Settings.load(BASE), ALL)
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
        require(Settings.load(env), [need])


def test_a_bad_key_is_reported_without_its_value() -> None:
    env = {**BASE, "ENCRYPTION_KEY": "zz" * 32}
    with pytest.raises(SettingsError) as caught:
        require(Settings.load(env), ["crypto"])
    assert "zz" * 8 not in str(caught.value)


def test_a_short_jwt_secret_is_refused() -> None:
    with pytest.raises(SettingsError, match="32 bytes"):
        require(Settings.load({**BASE, "SUPABASE_JWT_SECRET": "short"}), ["tokens"])


def test_a_wpp_secret_key_bcrypt_would_mostly_ignore_is_refused() -> None:
    with pytest.raises(SettingsError, match="WPP_SECRET_KEY must be at least 32 bytes"):
        require(Settings.load({**BASE, "WPP_SECRET_KEY": "k" * 31}), ["host"])
    require(Settings.load({**BASE, "WPP_SECRET_KEY": "k" * 32}), ["host"])


def test_secrets_can_come_from_secrets_manager() -> None:
    env = {k: v for k, v in BASE.items() if k not in ("WPP_SECRET_KEY", "ENCRYPTION_KEY")}
    env["SECRETS_ARN"] = "arn:aws:secretsmanager:eu-west-1:1:secret:gw"
    asked: list[str] = []

    def fetch(arn: str) -> dict[str, str]:
        asked.append(arn)
        return {"WPP_SECRET_KEY": SM_SECRET, "ENCRYPTION_KEY": KEY, "DATABASE_URL": "ignored"}

    settings = require(Settings.load(env, fetch_secrets=fetch), ALL)
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
        require(Settings.load(BASE), ["store", "stroe"])  # type: ignore[list-item]


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


def test_the_scheduled_limit_is_a_positive_count() -> None:
    assert Settings.load(BASE).max_scheduled_per_user == 1000
    assert Settings.load({**BASE, "MAX_SCHEDULED_PER_USER": "40"}).max_scheduled_per_user == 40
    with pytest.raises(
        SettingsError, match="MAX_SCHEDULED_PER_USER must be a positive whole number"
    ):
        Settings.load({**BASE, "MAX_SCHEDULED_PER_USER": "0"})


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
    verifier = repr(services.token_verifier())
    assert "issuer='https://ref.supabase.co/auth/v1'" in verifier
    assert "jwks_url='https://ref.supabase.co/auth/v1/.well-known/jwks.json'" in verifier


REST = {
    **{k: v for k, v in BASE.items() if k != "DATABASE_URL"},
    "SUPABASE_URL": "https://ref.supabase.co",
    "SUPABASE_SERVICE_ROLE_KEY": "sb_secret_" + "k" * 30,
    "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_" + "p" * 30,
}


def test_the_rest_api_needs_a_publishable_key_for_user_reads() -> None:
    env = {k: v for k, v in REST.items() if k != "SUPABASE_PUBLISHABLE_KEY"}
    with pytest.raises(SettingsError, match="SUPABASE_PUBLISHABLE_KEY"):
        require(Settings.load(env), ["store"])
    assert (
        require(Settings.load(REST), ["store"]).supabase_publishable_key
        == (REST["SUPABASE_PUBLISHABLE_KEY"])
    )


def test_the_legacy_anon_key_serves_as_the_publishable_key() -> None:
    env = {k: v for k, v in REST.items() if k != "SUPABASE_PUBLISHABLE_KEY"}
    settings = require(Settings.load({**env, "SUPABASE_ANON_KEY": "eyJ.anon.key"}), ["store"])
    assert settings.supabase_publishable_key == "eyJ.anon.key"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SUPABASE_PUBLISHABLE_KEY", "sb_secret_" + "x" * 30),
        ("SUPABASE_PUBLISHABLE_KEY", REST["SUPABASE_SERVICE_ROLE_KEY"]),
        ("SUPABASE_SERVICE_ROLE_KEY", "sb_publishable_" + "x" * 30),
    ],
)
def test_keys_in_each_others_place_are_refused_without_their_value(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name) as caught:
        require(Settings.load({**REST, name: value}), ["store"])
    assert value not in str(caught.value)


@pytest.mark.parametrize("db_timeout", ["1", "5", "8", "30"])
def test_the_rest_client_waits_longer_than_any_statement_may_run(db_timeout: str) -> None:
    """Supabase runs REST calls under an 8 s statement timeout that the gateway cannot lower:
    a client that gave up first could see a failure for a write that then commits."""
    settings = Settings.load({**REST, "DB_TIMEOUT": db_timeout})
    assert settings.db_http_timeout_s > max(settings.db_timeout_s, SUPABASE_STATEMENT_TIMEOUT_S)


def test_the_rest_transport_is_built_with_that_timeout() -> None:
    from wa_gateway.store import PostgrestTransport, create_transport

    settings = require(Settings.load({**REST, "DB_TIMEOUT": "12"}), ["store"])
    transport = create_transport(settings)
    try:
        assert isinstance(transport, PostgrestTransport)
        assert transport._http.timeout.read == settings.db_http_timeout_s > 12
    finally:
        transport.close()


def test_supabase_statement_timeout_is_the_bootstraps() -> None:
    """The local Supabase-like database sets the same statement timeouts as Supabase."""
    bootstrap = (Path(__file__).resolve().parents[2] / "local/supabase_bootstrap.sql").read_text()
    seconds = f"'{SUPABASE_STATEMENT_TIMEOUT_S:g}s'"
    assert f"alter role authenticated set statement_timeout = {seconds}" in bootstrap
    assert f"alter role authenticator set statement_timeout = {seconds}" in bootstrap


def test_anonymous_users_are_refused_unless_allowed(
    environment: Callable[[dict[str, str]], None],
) -> None:
    environment(BASE)
    assert services.token_verifier()._allow_anonymous is False
    environment({**BASE, "ALLOW_ANONYMOUS_USERS": "true"})
    assert services.token_verifier()._allow_anonymous is True


def test_api_key_and_delivery_settings_have_defaults_and_are_read() -> None:
    defaults = Settings.load(BASE)
    assert (defaults.api_key_burst, defaults.api_key_rate_per_minute) == (60, 300)
    assert (defaults.delivery.retry_base_s, defaults.delivery.retry_max_s) == (5, 3600)
    assert defaults.delivery.retry_for_s == 3 * 86400 and defaults.delivery.timeout_s == 10
    assert not defaults.delivery.allow_local and defaults.delivery_function is None
    given = Settings.load(
        {
            **BASE,
            "DELIVERY_RETRY_FOR": "2h",
            "DELIVERY_TIMEOUT": "2.5",
            "ALLOW_LOCAL_ENDPOINTS": "true",
            "DELIVERY_FUNCTION": "stack-delivery",
            "MAX_ENDPOINTS": "3",
        }
    )
    assert given.delivery.retry_for_s == 7200 and given.delivery.timeout_s == 2.5
    assert given.delivery.allow_local and given.delivery_function == "stack-delivery"
    assert given.max_endpoints == 3


@pytest.mark.parametrize(
    ("name", "value"),
    [("DELIVERY_RETRY_FOR", "3 days"), ("DELIVERY_TIMEOUT", "0"), ("API_KEY_BURST", "-1")],
)
def test_a_malformed_delivery_or_key_setting_is_refused(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.load({**BASE, name: value})
