import time

T_TOP = time.monotonic_ns()
# The first line of a fresh interpreter: what Lambda's init would time, after the interpreter
# itself started. Kept tiny, and run by path with ``python -P`` so nothing in bench/ shadows an
# import. Usage:
#   python -P cold_runner.py handler <spec.json> <result.json>    load app.py, serve one event
#   python -P cold_runner.py import <modules,comma,separated> <result.json>
#   python -P cold_runner.py secrets <modules,...> <result.json>   + a Secrets Manager client
#   python -P cold_runner.py secrets-extension <modules,...> <result.json>
#                                          + the secret read from the extension's endpoint
#   python -P cold_runner.py bare - <result.json>                  the interpreter alone
# The parent reads CLOCK_MONOTONIC (shared by every process on Linux) just before it spawns
# this process, so ``served - spawn`` covers fork, exec, interpreter start, import and the
# first request.
import sys  # noqa: E402


def _main() -> None:
    mode, arg, out = sys.argv[1], sys.argv[2], sys.argv[3]
    result = {"top_ns": T_TOP}  # type: dict[str, object]
    if mode == "import":
        import importlib

        for name in arg.split(","):
            importlib.import_module(name)
        result["imported_ns"] = result["served_ns"] = time.monotonic_ns()
    elif mode == "secrets":
        # The same imports, then what a function reading SECRETS_ARN adds before it can check a
        # token: Powertools' parameters utility and its Secrets Manager client (boto3). The
        # call to Secrets Manager itself is not made (no AWS here).
        import importlib

        for name in arg.split(","):
            importlib.import_module(name)
        from aws_lambda_powertools.utilities import parameters

        parameters.SecretsProvider()
        result["imported_ns"] = result["served_ns"] = time.monotonic_ns()
    elif mode == "secrets-extension":
        # The same imports, then the secret read as a function with the AWS Parameters and
        # Secrets Extension reads it: one stdlib HTTP request to the extension on localhost
        # (here a stand-in; on Lambda the extension's first answer also waits for Secrets
        # Manager, which the other mode does not count either).
        import importlib
        import os

        for name in arg.split(","):
            importlib.import_module(name)
        from wa_gateway.aws_secrets import read_secret_json

        read_secret_json(os.environ["SECRETS_ARN"], os.environ)
        result["imported_ns"] = result["served_ns"] = time.monotonic_ns()
    elif mode == "handler":
        import importlib.util
        import json

        with open(arg, encoding="utf-8") as f:
            spec_data = json.load(f)
        # As Lambda's init does: the handler module, loaded by its path.
        spec = importlib.util.spec_from_file_location(spec_data["module"], spec_data["path"])
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        result["imported_ns"] = time.monotonic_ns()
        sys.stderr.write("#bench: first request\n")  # a phase marker for -X importtime
        sys.stderr.flush()
        waited = _meter_host(spec_data.get("host_api"))
        answer = module.handler(spec_data["event"], _Context(**spec_data["context"]))
        result["served_ns"] = time.monotonic_ns()
        result["host_wait_ns"] = waited[0]
        result["host_calls"] = waited[1]
        if isinstance(answer, dict) and "statusCode" in answer:
            result["status"] = answer["statusCode"]
            result["body"] = str(answer.get("body", ""))[:300]
        else:
            result["status"] = 200 if isinstance(answer, dict) else 0
            result["body"] = json.dumps(answer)[:300]
    else:
        result["imported_ns"] = result["served_ns"] = time.monotonic_ns()
    import resource

    result["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stdout.flush()
    with open(out, "w", encoding="utf-8") as f:
        f.write(repr(result))


def _meter_host(prefix: str | None) -> list[int]:
    """Time spent in requests to the host's API (the host's think time is not the function's).
    Only for functions whose first request calls the host, so imports the layer's HTTP client
    anyway."""
    waited = [0, 0]
    if not prefix:
        return waited
    from wa_gateway.http_client import Pool

    original = Pool.request

    def request(pool, method, url, **kwargs):  # type: ignore[no-untyped-def]
        if not str(url).startswith(prefix):
            return original(pool, method, url, **kwargs)
        t0 = time.monotonic_ns()
        try:
            return original(pool, method, url, **kwargs)
        finally:
            waited[0] += time.monotonic_ns() - t0
            waited[1] += 1

    Pool.request = request  # type: ignore[method-assign,assignment]
    return waited


class _Context:
    """The parts of Lambda's context object that Powertools and the purge read."""

    def __init__(self, function_name: str, aws_request_id: str, timeout_ms: int) -> None:
        self.function_name = function_name
        self.aws_request_id = aws_request_id
        self.memory_limit_in_mb = 256
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "bench"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_main()
