"""``make purge``, ``make scheduler``, ``make reconcile`` and ``make media``: run a scheduled
function once against the local stack, as EventBridge would.

Reads ``.local/stack.env`` (written by ``make dev``), gives the function the same environment
the gateway gives the others, and invokes it with its sample event,
``events/<job>_scheduled.json``. Run:
``python -m local.scheduled_job purge|scheduler|reconcile|media``.
"""

from __future__ import annotations

import json
import os
import sys
import uuid

from local.function_url import LambdaContext
from local.gateway import load_handler
from local.stack import LOCAL_DIR, ROOT, LocalSecrets, function_env

JOBS = ("purge", "scheduler", "reconcile", "media")


def main(argv: list[str]) -> None:
    if len(argv) != 1 or argv[0] not in JOBS:
        sys.exit(f"usage: python -m local.scheduled_job {'|'.join(JOBS)}")
    job = argv[0]
    stack_env = LOCAL_DIR / "stack.env"
    if not stack_env.exists():
        sys.exit("No local stack found: start it with `make dev` first.")
    values = dict(line.split("=", 1) for line in stack_env.read_text().splitlines() if "=" in line)
    env = function_env(
        dsn=values["DATABASE_URL"],
        gateway_url=values["GATEWAY_URL"],
        wpp_url=values["WPP_URL"],
        local_secrets=LocalSecrets.load_or_create(LOCAL_DIR / "secrets.json"),
    )
    os.environ.update(env)
    handler = load_handler(job)
    assert handler is not None
    event = json.loads((ROOT / "events" / f"{job}_scheduled.json").read_text())
    report = handler(event, LambdaContext(job, str(uuid.uuid4()), timeout_ms=300_000))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
