"""``make purge``: run the purge job once against the local stack, as EventBridge would.

Reads ``.local/stack.env`` (written by ``make dev``), gives the purge function the same
environment the gateway gives the others, and invokes it with ``events/purge_scheduled.json``.
"""

from __future__ import annotations

import json
import os
import sys
import uuid

from local.function_url import LambdaContext
from local.gateway import load_handler
from local.stack import LOCAL_DIR, ROOT, LocalSecrets, function_env


def main() -> None:
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
    handler = load_handler("purge")
    assert handler is not None
    event = json.loads((ROOT / "events" / "purge_scheduled.json").read_text())
    report = handler(event, LambdaContext("purge", str(uuid.uuid4()), timeout_ms=300_000))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
