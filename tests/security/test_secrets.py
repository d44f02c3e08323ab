"""Secrets never leave: a whole stack run with recognisable sentinel secrets (the functions' and
a simulator of its own with a sentinel secret key), driven through everything that logs or
answers (linking, messages, acks, refused tokens and proofs, every kind of host failure, the
host gone, the purge), then every log line, answer and readable column is searched for them.
Host tokens must be stored encrypted only: no bcrypt ``$2b$`` in any table."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from local import processes
from local.gateway import handlers_in_process
from local.stack import LocalSecrets
from tests.conftest import Gateway, Simulator, own_gateway, own_simulator
from tests.e2e.flows import connected_user
from tests.security.inprocess import invoke
from tests.waiting import wait_until
from wa_gateway.auth.webhook_proof import session_proof
from wa_gateway.observability import SERVICE

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def sentinel(kind: str) -> str:
    return f"SENTINEL{kind}{secrets.token_hex(12)}"


@dataclass
class Stack:
    gateway: Gateway
    simulator: Simulator
    simulator_log: Path
    values: dict[str, str]
    answers: list[requests.Response] = field(default_factory=list)
    extra_output: list[str] = field(default_factory=list)
    proofs: list[str] = field(default_factory=list)

    def call(self, *args: Any, **kwargs: Any) -> requests.Response:
        answer = self.gateway.call(*args, **kwargs)
        self.answers.append(answer)
        return answer

    def hook(self, body: dict[str, Any], **kwargs: Any) -> requests.Response:
        answer = requests.post(self.gateway.fn("qr-webhook"), json=body, timeout=30, **kwargs)
        self.answers.append(answer)
        return answer


@pytest.fixture(scope="module")
def stack(database: str, output_dir: Path) -> Iterator[Stack]:
    key_hex = "5e4717e1" * 8  # "SENTINEL" in hex-speak: easy to spot, a valid AES-256 key
    local = LocalSecrets(
        jwt_secret=sentinel("jwt"),
        verify_token=sentinel("verify"),
        encryption_key=f"sentinel:{key_hex}",
        wpp_secret_key=sentinel("wpp"),
    )
    service_key = sentinel("servicerole")
    db_password = sentinel("dbpassword")
    # Local PostgreSQL trusts the socket, so a password in the URL is accepted and ignored.
    dsn = psycopg.conninfo.make_conninfo(database, password=db_password)
    simulator_log = output_dir / "simulator-sentinel.log"
    values = {
        "SUPABASE_JWT_SECRET": local.jwt_secret,
        "QR_WEBHOOK_VERIFY_TOKEN": local.verify_token,
        "ENCRYPTION_KEY": key_hex,
        "WPP_SECRET_KEY": local.wpp_secret_key,
        "SUPABASE_SERVICE_ROLE_KEY": service_key,
        "DATABASE_URL password": db_password,
    }
    with (
        own_simulator(local.wpp_secret_key, simulator_log, args=("--log-level=INFO",)) as host,
        own_gateway(
            dsn,
            host,
            local,
            output_dir / "gateway-sentinel.log",
            SUPABASE_SERVICE_ROLE_KEY=service_key,
            WPP_READ_TIMEOUT="2",
            SEND_LEASE="1s",
            POWERTOOLS_LOG_LEVEL="DEBUG",
        ) as gateway,
    ):
        yield Stack(gateway, host, simulator_log, values)


TO = "5511987654321"


def drive(stack: Stack) -> None:
    """Everything that answers or logs, once."""
    gw, sim = stack.gateway, stack.simulator
    user, token, name = connected_user(gw, sim, "sentinel")
    stack.proofs.append(session_proof(stack.values["QR_WEBHOOK_VERIFY_TOKEN"], name))
    stack.call("GET", "status", token)
    stack.call("GET", "status", token, params={"refresh": "true"})
    stack.call("POST", "start-session", token)
    key = str(uuid.uuid4())
    body = {"phone": TO, "message": "olá", "contactName": "Ana"}
    stack.call("POST", "send-message", token, json=body, headers={"Idempotency-Key": key})
    stack.call("POST", "send-message", token, json=body, headers={"Idempotency-Key": key})
    other = {**body, "message": "x"}
    stack.call("POST", "send-message", token, json=other, headers={"Idempotency-Key": key})
    stack.call("POST", "send-message", token, json={"phone": "5511900000000", "message": "x"})
    sim.control("POST", f"{name}/incoming", {"from": "5511912340000", "body": "oi"})

    # Refused callers.
    expired = gw.token_for(user, lifetime_s=-3600)
    for bad in (expired, token + "x", "nonsense", None):
        stack.call("GET", "status", bad)
    stack.call("POST", "send-message", token, data="{nope", headers={"content-type": "text/plain"})
    verify = stack.values["QR_WEBHOOK_VERIFY_TOKEN"]
    stack.hook({"event": "status-find", "session": name, "status": "inChat"})
    stack.hook({"event": "status-find", "session": name}, headers={"x-verify": verify + "x"})
    stack.hook({"event": "status-find", "session": name}, headers={"x-verify": verify})
    stack.hook({"event": "onack"}, params={"session": name, "verify": stack.proofs[0]})
    stack.hook({"event": "onack"}, params={"session": name, "verify": "0" * 64})

    # Every way the host fails; the slow host still does what it was asked after the gateway
    # gave up waiting (WPP_READ_TIMEOUT is shorter than its latency), and logs it.
    for faults in (
        {"error_rate": 1.0, "error_mode": "500"},
        {"error_rate": 1.0, "error_mode": "garbage"},
        {"latency_ms": 4000},
        {"down": True},
    ):
        with sim.faulty(**faults):
            stack.call("POST", "send-message", token, json={"phone": TO, "message": str(faults)})
            stack.call("GET", "status", token, params={"refresh": "true"})
            stack.call("POST", "start-session", gw.token_for(gw.new_user("sentinelfault")))
    wait_until(
        lambda: sim.in_flight() == 0 and sim.settled(name),
        within_s=15,
        message="the held requests answered, and every ack and event delivered",
    )

    # The host gone for good: connections refused, for calls with the secret key in the URL too.
    sim.host.stop()
    newcomer = gw.token_for(gw.new_user("sentinelgone"))
    stack.call("POST", "start-session", newcomer)
    stack.call("GET", "status", token, params={"refresh": "true"})
    stack.call("POST", "send-message", token, json={"phone": TO, "message": "gone"})
    stack.call("POST", "disconnect", token)

    # The purge, as EventBridge runs it, with the same environment.
    code = (
        "import json, uuid\n"
        "from local.gateway import load_handler\n"
        "from local.function_url import LambdaContext\n"
        "report = load_handler('purge')({'source': 'schedule', 'job': 'purge'},"
        " LambdaContext('purge', str(uuid.uuid4()), timeout_ms=60_000))\n"
        "print(json.dumps(report))\n"
    )
    env = {
        **os.environ,
        **gw.env,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT)]),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    stack.extra_output.append(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr[-2000:]


def found_in(text: str, values: dict[str, str]) -> list[str]:
    return [name for name, value in values.items() if value in text]


@pytest.fixture(scope="module")
def driven(stack: Stack, database: str) -> Stack:
    drive(stack)
    return stack


def all_rows(database: str) -> dict[str, str]:
    """Every table of the public schema, as JSON text (what any role could ever read)."""
    with psycopg.connect(database) as conn:
        tables = [
            str(r[0])
            for r in conn.execute(
                "select relname from pg_class where relnamespace = 'public'::regnamespace"
                " and relkind = 'r'"
            ).fetchall()
        ]
        return {
            table: "\n".join(
                str(r[0]) for r in conn.execute(f"select to_jsonb(t)::text from public.{table} t")
            )
            for table in tables
        }


def test_no_secret_reaches_a_log_an_answer_or_a_column(driven: Stack, database: str) -> None:
    stack = driven
    values = dict(stack.values)
    values.update({f"URL proof {i}": proof for i, proof in enumerate(stack.proofs)})

    gateway_log = stack.gateway.log_text()
    assert "request refused" in gateway_log and "host event" in gateway_log  # it did log
    assert found_in(gateway_log, values) == [], "a secret in the gateway's log"
    simulator_log = stack.simulator_log.read_text(errors="replace")
    assert found_in(simulator_log, values) == [], "a secret in the simulator's log"
    for output in stack.extra_output:
        assert "purge finished" in output
        assert found_in(output, values) == [], "a secret in the purge's log"

    codes = {a.json()["error"]["code"] for a in stack.answers if a.status_code >= 300}
    assert {"host_error", "host_timeout", "invalid_token", "invalid_verify_token"} <= codes
    for answer in stack.answers:
        text = answer.text + repr(dict(answer.headers))
        assert found_in(text, values) == [], (answer.request.url, answer.status_code)

    for table, rows in all_rows(database).items():
        assert found_in(rows, values) == [], f"a secret stored in {table}"


def test_host_tokens_are_stored_encrypted_only(driven: Stack, database: str) -> None:
    for table, rows in all_rows(database).items():
        assert "$2b$" not in rows, f"a bcrypt host token in clear in {table}"
    with psycopg.connect(database) as conn:
        stored = conn.execute("select host_token from whatsapp_session_secrets").fetchall()
    assert stored and all(str(r[0]).startswith("v1.") for r in stored)


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()}")


def test_library_logs_name_no_secret_when_the_runtime_logs_everything(
    gateway: Gateway, database: str
) -> None:
    """Lambda's runtime gives the root logger a handler, so whatever libraries log is kept: the
    host's paths carry its secret key, and no log line, the gateway's or a library's, may name
    it (the host's HTTP client logs nothing; an HTTP library that logged request paths, as
    urllib3 does at DEBUG, would fail here)."""
    secret_key = sentinel("wpp")
    env = {**gateway.env, "WPP_SERVER_URL": f"http://127.0.0.1:{processes.free_port()}"}
    env["WPP_SECRET_KEY"] = secret_key
    root, gateways = logging.getLogger(), logging.getLogger(SERVICE)  # the gateway's own too
    captured, level = Captured(), root.level
    root.addHandler(captured)
    gateways.addHandler(captured)
    root.setLevel(logging.DEBUG)
    try:
        with handlers_in_process(env) as handlers:
            token = gateway.token_for(gateway.new_user("rootlog"))
            start = {
                "version": "2.0",
                "rawPath": "/",
                "rawQueryString": "",
                "headers": {"authorization": f"Bearer {token}"},
                "requestContext": {"http": {"method": "POST", "path": "/"}, "stage": "$default"},
                "isBase64Encoded": False,
            }
            answer = invoke(handlers["start-session"], start, "start-session")
            report = invoke(handlers["purge"], {"source": "schedule", "job": "purge"}, "purge")
    finally:
        root.removeHandler(captured)
        gateways.removeHandler(captured)
        root.setLevel(level)
    assert answer["statusCode"] == 502 and isinstance(report, dict)
    assert any("request failed" in line for line in captured.lines), "nothing was logged"
    leaked = [line for line in captured.lines if secret_key in line]
    assert leaked == [], leaked[:3]
