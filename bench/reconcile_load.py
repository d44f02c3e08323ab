"""``python -m bench.reconcile_load [--sessions N]`` (``make bench-reconcile``): one reconcile
pass over N connected sessions on the simulator, timed, with its host calls and database round
trips per session; then a second pass, the steady state every 5 minutes.

Starts a stack of its own. The sessions are written straight into the database (connected an
hour ago, each with a host token) and restored on the simulator (linked, as after a host
restart); a tenth of them get two incoming messages whose webhooks are lost, so the first pass
reads those chats and stores them. Host tokens are made with bcrypt cost 4 to set up quickly;
the real host checks its cost-10 tokens on every request, which the host's CPU pays, not the
pass. Writes ``.local/bench-reconcile.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "shared") not in sys.path:
    sys.path.insert(0, str(ROOT / "shared"))

import bcrypt  # noqa: E402
import psycopg  # noqa: E402
import requests  # noqa: E402

from local.function_url import LambdaContext  # noqa: E402
from local.gateway import load_handler  # noqa: E402
from local.stack import running_stack  # noqa: E402

INSERT = """
with users as (
  insert into auth.users (id, email)
  select (r ->> 'user_id')::uuid, r ->> 'email' from jsonb_array_elements(%(rows)s::jsonb) r
  returning id
), sessions as (
  insert into public.whatsapp_sessions
    (user_id, session_id, status, attempt, connected_at, last_activity)
  select (r ->> 'user_id')::uuid, r ->> 'name', 'connected', 1, now() - interval '1 hour',
         now() - interval '1 hour'
  from jsonb_array_elements(%(rows)s::jsonb) r
  returning id, session_id
)
insert into public.whatsapp_session_secrets (session_id, host_token)
select s.id, r ->> 'token' from sessions s
join jsonb_array_elements(%(rows)s::jsonb) r on r ->> 'name' = s.session_id
"""


def host_token(name: str, secret: str) -> str:
    hashed = bcrypt.hashpw((name + secret).encode()[:72], bcrypt.gensalt(4)).decode()
    return hashed.replace("/", "_").replace("+", "-")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reconcile_load", description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=ROOT / ".local" / "bench-reconcile.json")
    args = parser.parse_args(argv)
    config = {"init_delay_ms": 0, "connect_delay_ms": 0, "webhook_drop_rate": 1.0}
    with running_stack(simulator_config=config, log_dir=ROOT / ".local" / "bench-reconcile") as s:
        os.environ.update(s.env)
        from wa_gateway import runtime

        runtime.reset()
        keyring = runtime.settings().keyring
        secret = s.local_secrets.wpp_secret_key
        rows = []
        for i in range(args.sessions):
            name = f"bench{i:05d}_{uuid.uuid4().hex[:8]}"
            token = keyring.encrypt(host_token(name, secret), context=name)
            rows.append(
                {
                    "user_id": str(uuid.uuid4()),
                    "email": f"{name}@example.com",
                    "name": name,
                    "token": token,
                }
            )
        with psycopg.connect(s.dsn, autocommit=True) as conn:
            conn.execute(INSERT, {"rows": json.dumps(rows)})
        http = requests.Session()

        def link(row: dict[str, Any]) -> None:
            sim = f"{s.sim_url}/_sim/{row['name']}"
            http.post(f"{sim}/restore", json={}, timeout=30).raise_for_status()
            if int(row["name"][5:10]) % 10 == 0:
                for text in ("missed 1", "missed 2"):
                    body = {"from": "5511988887777", "body": text}
                    while http.post(f"{sim}/incoming", json=body, timeout=30).status_code == 409:
                        time.sleep(0.01)  # not connected yet

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(link, rows))

        handler = load_handler("reconcile")
        assert handler is not None
        store = runtime.store()
        passes = []
        for label in ("first pass (a tenth with missed messages)", "second pass (steady state)"):
            trips = store.round_trips
            started = time.perf_counter()
            context = LambdaContext("reconcile", str(uuid.uuid4()), timeout_ms=900_000)
            report = handler({"source": "schedule", "job": "reconcile"}, context)
            seconds = time.perf_counter() - started
            round_trips = store.round_trips - trips
            passes.append(
                {
                    "pass": label,
                    "sessions": report["checked"],
                    "seconds": round(seconds, 2),
                    "host_calls_per_session": round(report["host_calls"] / report["checked"], 2),
                    "round_trips_per_session": round(round_trips / report["checked"], 2),
                    "report": report,
                }
            )
    result = {"sessions": args.sessions, "concurrency": runtime.settings().reconcile_concurrency}
    result["passes"] = passes
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    for p in passes:
        print(
            f"{p['pass']}: {p['sessions']} sessions in {p['seconds']} s,"
            f" {p['host_calls_per_session']} host calls and"
            f" {p['round_trips_per_session']} database round trips per session;"
            f" stored {p['report']['messages']}, errors {p['report']['errors']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
