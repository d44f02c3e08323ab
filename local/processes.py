"""Starting the local stack's servers as real processes, and waiting until they answer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    process.terminate()
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def start_module(
    module: str,
    args: list[str],
    *,
    env: Mapping[str, str],
    ready_url: str,
    log_path: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Run ``python -m module args`` with ``env`` added; return once ``ready_url`` answers."""
    full_env = {
        **os.environ,
        **env,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT)]),
    }
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=full_env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    wait_until_up(ready_url, process)
    return process


def stop(process: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
