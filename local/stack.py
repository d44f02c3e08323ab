"""``make dev``: the whole local stack, up until Ctrl-C.

1. an embedded PostgreSQL set up like Supabase (or ``DATABASE_URL``), migrated and seeded;
2. the WPPConnect simulator on its own port, as the real host runs on its own machine;
3. the gateway: the functions behind one port, the dev sign-in, the demo page;
4. ``.local/stack.env`` with the URLs and the local secrets.

The local secrets are random, made once per checkout and kept in ``.local/secrets.json``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from local import devdb, processes

ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = ROOT / ".local"


@dataclass(frozen=True)
class LocalSecrets:
    jwt_secret: str
    verify_token: str
    encryption_key: str
    wpp_secret_key: str

    @classmethod
    def generate(cls) -> LocalSecrets:
        return cls(
            jwt_secret=secrets.token_urlsafe(48),
            verify_token=secrets.token_urlsafe(32),
            encryption_key="local1:" + secrets.token_hex(32),
            wpp_secret_key=secrets.token_hex(24),  # also a command-line value: no leading "-"
        )

    @classmethod
    def load_or_create(cls, path: Path) -> LocalSecrets:
        if path.exists():
            return cls(**json.loads(path.read_text()))
        made = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(made.__dict__))
        path.chmod(0o600)
        return made


def function_env(
    *, dsn: str, gateway_url: str, wpp_url: str, local_secrets: LocalSecrets
) -> dict[str, str]:
    """The environment the functions get locally: what template.yaml gives them in AWS."""
    return {
        "DATABASE_URL": dsn,
        "SUPABASE_JWT_SECRET": local_secrets.jwt_secret,
        "SUPABASE_JWT_ISSUER": f"{gateway_url}/auth/v1",
        "WPP_SERVER_URL": wpp_url,
        "WPP_SECRET_KEY": local_secrets.wpp_secret_key,
        "QR_WEBHOOK_VERIFY_TOKEN": local_secrets.verify_token,
        "ENCRYPTION_KEY": local_secrets.encryption_key,
        "WEBHOOK_PUBLIC_URL": f"{gateway_url}/qr-webhook/",
        "ALLOWED_ORIGINS": f"{gateway_url},http://localhost:{gateway_url.rsplit(':', 1)[-1]}",
        "POWERTOOLS_SERVICE_NAME": "wa-gateway-local",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "GATEWAY_VERSION": _version(),
    }


def _version() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip() or "dev"
    except (OSError, subprocess.CalledProcessError):
        return "dev"


def main() -> None:
    gateway_port = int(os.environ.get("GATEWAY_PORT", "3000"))
    wpp_port = int(os.environ.get("WPP_PORT", "21465"))
    LOCAL_DIR.mkdir(exist_ok=True)
    local_secrets = LocalSecrets.load_or_create(LOCAL_DIR / "secrets.json")

    embedded = not os.environ.get("DATABASE_URL")
    dsn = os.environ.get("DATABASE_URL") or devdb.start_embedded(LOCAL_DIR / "pgdata")
    devdb.prepare(dsn)

    gateway_url = f"http://127.0.0.1:{gateway_port}"
    wpp_url = f"http://127.0.0.1:{wpp_port}"
    env = function_env(
        dsn=dsn, gateway_url=gateway_url, wpp_url=wpp_url, local_secrets=local_secrets
    )
    log_dir = LOCAL_DIR / "logs"
    log_dir.mkdir(exist_ok=True)

    children: list[subprocess.Popen[bytes]] = []
    try:
        simulator, _ = processes.start_simulator(
            port=wpp_port,
            data_dir=LOCAL_DIR / "simulator",
            secret_key=local_secrets.wpp_secret_key,
            log_path=log_dir / "simulator.log",
        )
        children.append(simulator)
        gateway, _ = processes.start_gateway(
            port=gateway_port, env=env, log_path=log_dir / "gateway.log"
        )
        children.append(gateway)
        stack_env = {
            "GATEWAY_URL": gateway_url,
            "DATABASE_URL": dsn,
            "WPP_URL": wpp_url,
            "SUPABASE_JWT_SECRET": local_secrets.jwt_secret,
            "QR_WEBHOOK_VERIFY_TOKEN": local_secrets.verify_token,
            "WPP_SECRET_KEY": local_secrets.wpp_secret_key,
        }
        (LOCAL_DIR / "stack.env").write_text(
            "".join(f"{key}={value}\n" for key, value in stack_env.items())
        )
        print(
            "\nLocal stack is up (Ctrl-C stops it):\n"
            f"  demo page      {gateway_url}/\n"
            f"  functions      {gateway_url}/<function>/  (start-session, status, ...)\n"
            f"  dev sign-in    POST {gateway_url}/auth/v1/token?grant_type=password\n"
            f"  simulator      {wpp_url}  (controls under /_sim/)\n"
            f"  database       {dsn}\n"
            f"  settings       {LOCAL_DIR / 'stack.env'}\n"
            f"  logs           {log_dir}/\n"
            "  users          alice@example.com, bob@example.com (password: password)\n",
            flush=True,
        )
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("A local server stopped; see the logs.", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(children):
            processes.stop(child)
        if embedded:
            devdb.stop_embedded(LOCAL_DIR / "pgdata")
        print("Local stack stopped.", file=sys.stderr)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background
    main()
