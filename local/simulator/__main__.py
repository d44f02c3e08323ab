"""Command line: ``python -m local.simulator [--host H] [--port P] [--secret-key K]
[--data-dir DIR] [--webhook-url URL] [--no-start-all] [--fidelity kind|real]
[--config JSON] [--log-level LEVEL]``.

``--config`` takes ``/_sim/config`` keys as a JSON object, applied before the stored sessions
are started at boot (a restart's restore timing, say): a simulator started again on the same
``--data-dir`` restores its sessions as a restarted host does.

``--secret-key`` defaults to ``$WPP_SECRET_KEY`` (else ``THISISMYSECURETOKEN``) and
``--webhook-url`` to ``$WEBHOOK_URL``, ``--fidelity`` to ``$SIM_FIDELITY`` (else
``config.DEFAULT_FIDELITY``). ``--port 0`` picks a free port. Once listening it
prints ``simulator listening on http://HOST:PORT``. SIGTERM and SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from local.simulator.app import Simulator
from local.simulator.config import (
    DEFAULT_FIDELITY,
    DEFAULT_SECRET_KEY,
    FIDELITIES,
    ConfigError,
    SimConfig,
    apply_update,
    with_fidelity,
)
from local.simulator.server import SimulatorHTTPServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.simulator",
        description="A simulator of the wppconnect-server HTTP API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=21465)
    parser.add_argument(
        "--secret-key", default=os.environ.get("WPP_SECRET_KEY") or DEFAULT_SECRET_KEY
    )
    parser.add_argument("--data-dir", default=".local/simulator", type=Path)
    parser.add_argument("--webhook-url", default=os.environ.get("WEBHOOK_URL") or None)
    parser.add_argument(
        "--no-start-all",
        action="store_true",
        help="do not restore the stored sessions at boot (the server's startAllSession)",
    )
    parser.add_argument(
        "--fidelity",
        choices=sorted(FIDELITIES),
        default=os.environ.get("SIM_FIDELITY") or DEFAULT_FIDELITY,
        help="how closely to copy the real server's quirks (see config.REAL_DEFAULTS)",
    )
    parser.add_argument(
        "--config",
        type=_json_object,
        default={},
        help="/_sim/config keys as a JSON object, applied before the sessions start at boot",
    )
    parser.add_argument("--log-level", default=os.environ.get("SIM_LOG_LEVEL", "WARNING"))
    return parser.parse_args(argv)


def _json_object(text: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = with_fidelity(SimConfig(webhook_url=args.webhook_url), args.fidelity)
    try:
        config = apply_update(config, args.config)
    except ConfigError as exc:
        print(f"--config: {exc}", file=sys.stderr)
        return 2
    app = Simulator(args.secret_key, args.data_dir, config)
    server = SimulatorHTTPServer((args.host, args.port), app)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server.start("sim-http")
    print(f"simulator listening on http://{args.host}:{server.server_port}", flush=True)
    if not args.no_start_all:
        app.start_all_on_boot()
    while not stop.wait(0.1):
        pass
    server.stop()
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
