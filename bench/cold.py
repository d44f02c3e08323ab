"""Cold starts: a fresh interpreter per run that loads ``functions/<f>/app.py`` by path (as
Lambda's init does) and serves its first request, against the baseline: a fresh interpreter
importing, eagerly, the packages the design names.

Timing (see ``cold_runner.py``): the parent reads CLOCK_MONOTONIC just before it spawns the
runner; the runner reads the same clock when its first line runs, after the handler module is
loaded, and when the first answer is back. So a run's figure covers fork, exec, the
interpreter's own start, the imports and the first request; the baseline's figure covers the
same start and its imports. Both are medians over interleaved runs. Each runner also reports
its peak RSS (``ru_maxrss``) after the first request.

The "no .pyc" variant (an extra figure) runs the same handlers from a copy of exactly the
packages the built layer holds, without any ``__pycache__`` and with bytecode writing off:
what Lambda runs, since the layer is built ``--no-compile`` with ``__pycache__`` removed and
``/opt`` is read-only, so every cold start compiles every imported module again.
"""

from __future__ import annotations

import ast
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import events, importtime
from bench.stack import FUNCTIONS, Stack, User
from local.secrets_extension import SecretsExtensionStandIn

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().with_name("cold_runner.py")
LAYER_DIR = ROOT / ".aws-sam" / "build" / "GatewayLayer" / "python"
BASELINE_MODULES = (
    "boto3",
    "supabase",
    "aws_lambda_powertools.event_handler",
    "pydantic",
    "requests",
    "qrcode",
    "cryptography",
)
# template.yaml's timeouts, for the context's remaining time.
TIMEOUT_MS = {"start-session": 35_000, "purge": 300_000}
RUN_TIMEOUT_S = 120
# Functions whose first request calls the host: the runner also times those calls.
HOST_CALLERS = ("start-session", "send-message", "disconnect")
# The status function again, its first request made with an API key (the key's first in the
# container: one round trip learns its owner and checks it, one reads as the owner).
KEY_LABEL = "status (API key)"
FOLDER_OF = {KEY_LABEL: FUNCTIONS["status"]}

# The third-party packages each function's first request needs (the design's: Powertools'
# resolver, Logger and Metrics; psycopg; the standard library's http.client and ssl, and
# cryptography's AES-GCM for the host's token). A fresh interpreter importing just these is
# the least a cold start can cost with them, before any code of the gateway runs:
# ``library_floor_median``.
_URL_FUNCTION = ("aws_lambda_powertools.event_handler", "aws_lambda_powertools.metrics")
_HOST = ("http.client", "ssl", "cryptography.hazmat.primitives.ciphers.aead")
LIBRARIES = {
    "status": (*_URL_FUNCTION, "psycopg"),
    "start-session": (*_URL_FUNCTION, "psycopg", *_HOST),
    "send-message": (*_URL_FUNCTION, "psycopg", *_HOST),
    "qr-webhook": (*_URL_FUNCTION, "psycopg"),
    "disconnect": (*_URL_FUNCTION, "psycopg", *_HOST),
    "purge": ("aws_lambda_powertools.logging", "aws_lambda_powertools.metrics", "psycopg"),
}
LIBRARIES[KEY_LABEL] = LIBRARIES["status"]


@dataclass(frozen=True)
class Sample:
    total_ms: float  # spawn -> first answer
    startup_ms: float  # spawn -> the runner's first line
    import_ms: float  # the handler module's load (its imports, settings, resolver)
    request_ms: float  # the first request, lazy imports and connections included
    rss_mb: float
    host_ms: float = 0.0  # of request_ms, spent waiting for the host's answers


class ColdEvents:
    """A realistic first event per function; users that an event uses up are not reused."""

    def __init__(
        self,
        stack: Stack,
        *,
        status_user: User,
        send_user: User,
        fresh: list[User],
        linked: list[User],
        status_key: str,
    ) -> None:
        self.stack = stack
        self.status_user = status_user
        self.status_key = status_key
        self.send_user = send_user
        self._fresh: Iterator[User] = iter(fresh)
        self._linked: Iterator[User] = iter(linked)
        self._sent = 0

    def next(self, function: str) -> dict[str, Any]:
        secret = self.stack.secrets.verify_token
        if function == "status":
            return events.status_event(self.status_user.token)
        if function == KEY_LABEL:
            return events.status_event(self.status_key)
        if function == "start-session":
            return events.start_event(next(self._fresh).token)
        if function == "send-message":
            self._sent += 1
            return events.send_event(self.send_user.token, f"Cold start message {self._sent}")
        if function == "qr-webhook":
            session = self.status_user.session or ""
            return events.webhook_by_header(secret, events.status_find_body(session, "inChat"))
        if function == "disconnect":
            return events.disconnect_event(next(self._linked).token)
        if function == "purge":
            return events.scheduled_event()
        raise ValueError(function)


class ColdBench:
    """Spawns the cold starts, each into ``bench-functions.log`` of ``out_dir``, from a
    scratch folder removed when the ``with`` block ends."""

    def __init__(self, stack: Stack, out_dir: Path) -> None:
        self.stack = stack
        self.out_dir = out_dir
        self.log_path = out_dir / "bench-functions.log"
        self.scratch = Path(tempfile.mkdtemp(prefix="wa-bench-cold-"))
        self._specs = 0

    def __enter__(self) -> ColdBench:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def env(self, pythonpath: list[Path], **extra: str) -> dict[str, str]:
        env = {**os.environ, **self.stack.env, **extra}
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
        return env

    def default_env(self) -> dict[str, str]:
        return self.env([ROOT / "shared", ROOT])

    def spec(self, function: str, event: dict[str, Any]) -> str:
        self._specs += 1
        path = self.scratch / f"spec-{self._specs}.json"
        request_id = (event.get("requestContext") or {}).get("requestId", f"cold-{self._specs}")
        data = {
            "module": "app",
            "path": str(
                ROOT / "functions" / FOLDER_OF.get(function, FUNCTIONS.get(function, "")) / "app.py"
            ),
            "event": event,
            "context": {
                "function_name": function,
                "aws_request_id": request_id,
                "timeout_ms": TIMEOUT_MS.get(function, 20_000),
            },
        }
        if function in HOST_CALLERS:
            data["host_api"] = f"{self.stack.sim_url}/api/"
        path.write_text(json.dumps(data))
        return str(path)

    def spawn(
        self, mode: str, arg: str, env: dict[str, str], *, importtime_on: bool = False
    ) -> tuple[Sample, dict[str, Any], str]:
        out = self.scratch / f"result-{time.monotonic_ns()}.txt"
        flags = ["-X", "importtime"] if importtime_on else []
        command = [sys.executable, *flags, "-P", str(RUNNER), mode, arg, str(out)]
        with open(self.log_path, "ab") as log:
            spawned = time.monotonic_ns()
            done = subprocess.run(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.PIPE,
                timeout=RUN_TIMEOUT_S,
                check=False,
            )
        stderr = done.stderr.decode("utf-8", "replace")
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(
                f"cold run {mode} {arg} failed ({done.returncode}):\n{stderr[-3000:]}"
            )
        result: dict[str, Any] = ast.literal_eval(out.read_text())
        out.unlink()
        ms = 1e-6
        sample = Sample(
            total_ms=(result["served_ns"] - spawned) * ms,
            startup_ms=(result["top_ns"] - spawned) * ms,
            import_ms=(result["imported_ns"] - result["top_ns"]) * ms,
            request_ms=(result["served_ns"] - result["imported_ns"]) * ms,
            rss_mb=result["maxrss_kb"] / 1024,
            host_ms=result.get("host_wait_ns", 0) * ms,
        )
        return sample, result, stderr

    def run_handler(
        self, function: str, event: dict[str, Any], env: dict[str, str], **kw: Any
    ) -> tuple[Sample, str]:
        sample, result, stderr = self.spawn("handler", self.spec(function, event), env, **kw)
        status = result.get("status")
        body = result.get("body", "")
        ok = status == 200 and (function != "purge" or '"complete"' in body)
        if not ok:
            raise RuntimeError(f"{function}: first request answered {status}: {body}")
        return sample, stderr

    def no_pyc_tree(self) -> Path | None:
        """A copy of what the built layer holds, from this venv, without any bytecode."""
        if not LAYER_DIR.is_dir():
            return None
        site = Path(next(p for p in sys.path if p.endswith("site-packages")))
        target = self.scratch / "layer-no-pyc"
        target.mkdir()
        skip = shutil.ignore_patterns("__pycache__", "*.pyc")
        for entry in LAYER_DIR.iterdir():
            name = entry.name
            if name.endswith(".dist-info"):
                continue
            if name == "wa_gateway":
                source = ROOT / "shared" / "wa_gateway"
            elif name.endswith(".so"):
                stem = name.split(".", 1)[0]
                found = sorted(site.glob(f"{stem}.*.so"))
                if not found:
                    continue
                source = found[0]
            else:
                source = site / name
            if source.is_dir():
                shutil.copytree(source, target / source.name, ignore=skip)
            elif source.exists():
                shutil.copy2(source, target / source.name)
        return target


BENCH_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-AbCdEf"
SECRETS_BOTO3 = "Powertools parameters + boto3"
SECRETS_EXTENSION = "Parameters and Secrets extension (stdlib HTTP)"

# What a cold start pays for each way to the database (a fresh interpreter importing the
# transport's module alone): the direct connection (psycopg) and Supabase's REST API (supabase-py's
# PostgREST client).
TRANSPORTS = {
    "DATABASE_URL (psycopg)": "wa_gateway.store.postgres",
    "SUPABASE_URL (supabase-py PostgREST)": "wa_gateway.store.postgrest",
}


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def measure(
    stack: Stack,
    provider: ColdEvents,
    *,
    runs: int,
    no_pyc_runs: int,
    out_dir: Path,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    with ColdBench(stack, out_dir) as bench:
        env = bench.default_env()
        # The gateway's own .pyc, current (others may have just edited a file): no run compiles.
        for folder in ("shared", "functions"):
            compileall.compile_dir(str(ROOT / folder), quiet=1)
        baseline_arg = ",".join(BASELINE_MODULES)
        importtime_summary: dict[str, Any] = {}

        # 1. One -X importtime run each (also warms the OS file cache and any stale .pyc).
        progress("cold: import-time reports")
        measured = [*FUNCTIONS, KEY_LABEL]
        for function in measured:
            _, stderr = bench.run_handler(
                function, provider.next(function), env, importtime_on=True
            )
            folder = FOLDER_OF.get(function, FUNCTIONS.get(function))
            text, summary = importtime.report(
                f"{function} (load functions/{folder}/app.py, first request)", stderr
            )
            name = function.replace(" (API key)", "-api-key")
            (bench.out_dir / f"bench-importtime-{name}.txt").write_text(text)
            importtime_summary[function] = summary
        _, _, stderr = bench.spawn("import", baseline_arg, env, importtime_on=True)
        text, summary = importtime.report(
            "baseline: import " + ", ".join(BASELINE_MODULES), stderr, root_label="baseline"
        )
        (bench.out_dir / "bench-importtime-baseline.txt").write_text(text)
        importtime_summary["baseline"] = summary

        # 2. The timed runs, interleaved so that drift hits every figure alike.
        samples: dict[str, list[Sample]] = {f: [] for f in measured}
        baseline: list[Sample] = []
        bare: list[Sample] = []
        transports: dict[str, list[Sample]] = {label: [] for label in TRANSPORTS}
        libraries: dict[str, list[Sample]] = {f: [] for f in measured}
        secrets: list[Sample] = []
        secrets_env = {**env, "AWS_DEFAULT_REGION": "us-east-1"}
        through_extension: list[Sample] = []
        extension = SecretsExtensionStandIn({BENCH_ARN: {}}, session_token=os.urandom(12).hex())
        extension_env = {**env, "SECRETS_ARN": BENCH_ARN, **extension.env()}
        try:
            for run in range(runs):
                progress(f"cold: run {run + 1}/{runs}")
                bare.append(bench.spawn("bare", "-", env)[0])
                baseline.append(bench.spawn("import", baseline_arg, env)[0])
                for label, module in TRANSPORTS.items():
                    transports[label].append(bench.spawn("import", module, env)[0])
                for function, modules in LIBRARIES.items():
                    libraries[function].append(bench.spawn("import", ",".join(modules), env)[0])
                status_libraries = ",".join(LIBRARIES["status"])
                secrets.append(bench.spawn("secrets", status_libraries, secrets_env)[0])
                through_extension.append(
                    bench.spawn("secrets-extension", status_libraries, extension_env)[0]
                )
                for function in measured:
                    event = provider.next(function)
                    samples[function].append(bench.run_handler(function, event, env)[0])
        finally:
            extension.close()
        if len(extension.asked) != runs:
            raise RuntimeError("the extension's stand-in was not asked once per run")

        # 3. As Lambda runs the layer: no bytecode cache at all.
        no_pyc: dict[str, list[Sample]] = {f: [] for f in FUNCTIONS}
        tree = bench.no_pyc_tree() if no_pyc_runs > 0 else None
        if tree is not None:
            raw_env = bench.env([tree, ROOT], PYTHONDONTWRITEBYTECODE="1")
            for run in range(no_pyc_runs):
                progress(f"cold: no-.pyc run {run + 1}/{no_pyc_runs}")
                for function in FUNCTIONS:
                    event = provider.next(function)
                    no_pyc[function].append(bench.run_handler(function, event, raw_env)[0])

        base_median = _median([s.total_ms for s in baseline])
        cold: dict[str, Any] = {}
        rss: dict[str, float] = {}
        for function, got in samples.items():
            median = _median([s.total_ms for s in got])
            cold[function] = {
                "median": median,
                "baseline_median": base_median,
                "ratio": round(median / base_median, 3),
                "min": round(min(s.total_ms for s in got), 1),
                "max": round(max(s.total_ms for s in got), 1),
                "runs": len(got),
                "startup_median": _median([s.startup_ms for s in got]),
                "import_median": _median([s.import_ms for s in got]),
                "first_request_median": _median([s.request_ms for s in got]),
                "library_floor_median": _median([s.total_ms for s in libraries[function]]),
            }
            cold[function]["library_floor_ratio"] = round(
                cold[function]["library_floor_median"] / base_median, 3
            )
            if function in HOST_CALLERS:
                # The host's think time (its bcrypt token checks, the 0.5 s a logout takes) is
                # not the function's: the same figure without the time spent waiting for it.
                own = _median([s.total_ms - s.host_ms for s in got])
                cold[function].update(
                    host_wait_median=_median([s.host_ms for s in got]),
                    median_excl_host_wait=own,
                    ratio_excl_host_wait=round(own / base_median, 3),
                )
            rss[function] = round(max(s.rss_mb for s in got), 1)
        result: dict[str, Any] = {
            "cold_init_ms": cold,
            "peak_rss_mb": rss,
            "cold_baseline": {
                "median": base_median,
                "min": round(min(s.total_ms for s in baseline), 1),
                "max": round(max(s.total_ms for s in baseline), 1),
                "runs": len(baseline),
                "modules": list(BASELINE_MODULES),
                "peak_rss_mb": round(max(s.rss_mb for s in baseline), 1),
            },
            "cold_interpreter_ms": _median([s.total_ms for s in bare]),
            # The functions above use DATABASE_URL; production may use SUPABASE_URL instead.
            "cold_transport_import_ms": {
                label: _median([s.total_ms for s in got]) for label, got in transports.items()
            },
            # Deployed with SECRETS_ARN (the template's way), every cold start also reads the secret
            # before it can check a token: through Powertools' parameters and a boto3 client, or
            # through the Parameters and Secrets extension (a stand-in here). Either way the wait
            # for Secrets Manager itself is not counted.
            "cold_secrets_arn_extra_ms": {
                label: round(
                    _median([s.total_ms for s in got])
                    - _median([s.total_ms for s in libraries["status"]]),
                    1,
                )
                for label, got in (
                    (SECRETS_BOTO3, secrets),
                    (SECRETS_EXTENSION, through_extension),
                )
            },
            "importtime": importtime_summary,
        }
        if tree is not None:
            result["cold_init_no_pyc_ms"] = {
                function: {
                    "median": _median([s.total_ms for s in got]),
                    "import_median": _median([s.import_ms for s in got]),
                    "first_request_median": _median([s.request_ms for s in got]),
                    "runs": len(got),
                    "extra_vs_pyc_ms": round(
                        _median([s.total_ms for s in got]) - cold[function]["median"], 1
                    ),
                }
                for function, got in no_pyc.items()
            }
        return result
