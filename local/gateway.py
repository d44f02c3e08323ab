"""The local stand-in for the functions' HTTPS URLs: one port, one path prefix per function.

``http://127.0.0.1:3000/<function>/...`` becomes the function-URL event AWS would send (path
``/...``), the function's handler runs in a container of its own (local.containers: a child
process that imported it once, so warm like a reused Lambda container, one invocation at a
time; the functions side by side, as in Lambda), and its result goes back as HTTP with the
URL's CORS applied. Also serves,
on the same port, the stand-ins for Supabase's APIs an app calls with supabase-js or
supabase-py: Auth's sign-in (``/auth/v1/``, local.dev_auth), PostgREST (``/rest/v1/``,
local.dev_rest) and Storage (``/storage/v1/``, local.dev_storage, bytes in
``DEV_STORAGE_DIR``); and the demo page (``web/``, at ``/``). Bodies are read by
``Content-Length`` or chunked, within the caps (local.http_body). It also stands in for
Lambda's asynchronous Invoke (``POST /2015-03-31/functions/<name>/invocations`` with
``X-Amz-Invocation-Type: Event``, what boto3 sends with ``AWS_ENDPOINT_URL_LAMBDA`` pointing
here) of the functions the others start at once, the delivery worker and the media function:
it answers 202 and runs the function beside the others, as its own Lambda would (not one at a
time with them: the worker waits on users' endpoints, the media function on the host), up to
its reserved concurrency (``ASYNC_FUNCTIONS``); an event that comes while all its invocations
are busy waits for one to end (the same event waiting twice runs once). With
``LOCAL_SCHEDULER_EVERY_S``, ``LOCAL_RECONCILE_EVERY_S``, ``LOCAL_MEDIA_EVERY_S`` or
``LOCAL_DELIVERY_EVERY_S`` set (``make dev`` sets 10, 30, 15 and 5), it also runs that function
every so many seconds, as EventBridge runs them in AWS; the delivery worker runs every 60 s
without it (its schedule in AWS: a minute) when the gateway has a database and a key.

Run: ``python -m local.gateway --port 3000`` with the stack's environment (see local.stack).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local import dev_auth, dev_rest, dev_storage
from local.containers import FunctionContainers, load_handler
from local.function_url import CorsConfig, HttpResponse, LambdaContext, build_event, to_http
from local.http_body import BodyRefused, read_body

ROOT = Path(__file__).resolve().parent.parent
PAGE_DIR = ROOT / "web"
PAGE_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".md": "text/markdown; charset=utf-8",
}
MAX_REQUEST_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit

# URL prefix -> folder under functions/. Browser-facing functions get CORS; the webhook not.
FUNCTIONS = {
    "start-session": "start_session",
    "status": "status",
    "send-message": "send_message",
    "disconnect": "disconnect",
    "qr-webhook": "qr_webhook",
    "api-keys": "api_keys",
}
BROWSER_FACING = {"start-session", "status", "send-message", "disconnect", "api-keys"}
# The methods a browser may use, where a function's URL allows more than GET and POST.
CORS_METHODS = {"api-keys": ("GET", "POST", "DELETE")}
# Scheduled functions run periodically when their variable holds a number of seconds.
PERIODIC_JOBS = {
    "scheduler": "LOCAL_SCHEDULER_EVERY_S",
    "reconcile": "LOCAL_RECONCILE_EVERY_S",
    "media": "LOCAL_MEDIA_EVERY_S",
    "delivery": "LOCAL_DELIVERY_EVERY_S",
}
# Functions the others start asynchronously (Lambda's Invoke, InvocationType Event), each
# named as its folder under functions/, with the invocations it runs at once (its reserved
# concurrency in AWS), beside the functions with URLs.
ASYNC_FUNCTIONS = {"delivery": 4, "media": 1}
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")

Handler = Callable[[dict[str, Any], Any], Any]
# Containers a function may have at once (Lambda adds one when invocations overlap).
CONTAINERS_VARIABLE = "LOCAL_CONTAINERS"

# The Auth routes the dev sign-in serves; Auth's router answers any other path with this.
AUTH_ROUTES = {"/auth/v1/token", "/auth/v1/user", "/auth/v1/logout"}
NOT_FOUND = b"404 page not found\n"


# The scheduled functions, which EventBridge invokes (no URL).
SCHEDULED = ("purge", "scheduler", "reconcile", "delivery", "media")


@contextmanager
def handlers_in_process(env: Mapping[str, str]) -> Iterator[dict[str, Handler]]:
    """Every function's handler (by URL prefix; the scheduled ones by name) imported in this
    process, as a fresh Lambda container imports it, with ``env`` added to the process
    environment; the environment and the layer's shared parts are put back afterwards."""
    from wa_gateway import runtime

    saved = dict(os.environ)
    os.environ.update(env)
    runtime.reset()
    try:
        loaded: dict[str, Handler] = {}
        for name, folder in {**FUNCTIONS, **{job: job for job in SCHEDULED}}.items():
            handler = load_handler(folder)
            assert handler is not None, folder
            loaded[name] = handler
        yield loaded
    finally:
        os.environ.clear()
        os.environ.update(saved)
        runtime.reset()


def _run_once(
    name: str, handler: Handler, event: Any, lock: threading.Lock | None = None, **context: Any
) -> None:
    """One invocation of a function no HTTP request waits for: a failure is the function's to
    log, and the next one runs anyway."""
    invocation = LambdaContext(function_name=name, aws_request_id=str(uuid.uuid4()), **context)
    try:
        if lock is None:
            handler(event, invocation)
        else:
            with lock:
                handler(event, invocation)
    except Exception as exc:
        print(f"{name} run failed: {type(exc).__name__}", file=sys.stderr)


class AsyncFunction:
    """A function Lambda invokes asynchronously, beside the others (containers of its own):
    ``functions/<name>/app.py``, imported at its first invocation, each invocation on a thread
    of its own, at most ``limit`` at once; an event that comes while all are busy waits for
    one to end, and one equal to an event already waiting is dropped (a second kick of the
    delivery worker says nothing the first does not)."""

    TIMEOUT_MS = 120_000  # both functions' Timeout in template.yaml

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self._handler: Handler | None = None
        self._load = threading.Lock()
        self._state = threading.Lock()
        self._running = 0
        self._waiting: list[Any] = []

    def start(self, event: Any) -> None:
        with self._state:
            if self._running >= self.limit:
                if event not in self._waiting:
                    self._waiting.append(event)
                return
            self._running += 1
        threading.Thread(target=self._run, args=(event,), name=self.name, daemon=True).start()

    def _run(self, event: Any) -> None:
        while True:
            handler = self._loaded()
            if handler is not None:
                _run_once(self.name, handler, event, timeout_ms=self.TIMEOUT_MS)
            with self._state:
                if not self._waiting:
                    self._running -= 1
                    return
                event = self._waiting.pop(0)

    def _loaded(self) -> Handler | None:
        with self._load:
            if self._handler is None:
                try:
                    self._handler = load_handler(self.name)
                except Exception as exc:  # a setting it needs is missing: as a failed start
                    print(f"{self.name} did not start: {type(exc).__name__}", file=sys.stderr)
            return self._handler


class Gateway:
    def __init__(
        self,
        *,
        dsn: str | None,
        jwt_secret: str | None,
        issuer: str,
        cors: CorsConfig,
        token_lifetime_s: int = dev_auth.TOKEN_LIFETIME_S,
        storage_dir: Path | None = None,
    ):
        self.dsn = dsn
        self.jwt_secret = jwt_secret
        self.issuer = issuer
        self.cors = cors
        self.auth = (
            dev_auth.DevAuth(dsn, secret=jwt_secret, issuer=issuer, lifetime_s=token_lifetime_s)
            if dsn and jwt_secret
            else None
        )
        self.storage = (
            dev_storage.DevStorage(dsn, jwt_secret=jwt_secret, data_dir=storage_dir)
            if dsn and jwt_secret and storage_dir
            else None
        )
        self.rest = dev_rest.DevRest(dsn, jwt_secret=jwt_secret) if dsn and jwt_secret else None
        limit = int(os.environ.get(CONTAINERS_VARIABLE) or 1)
        self.functions = {
            prefix: FunctionContainers(folder, limit)
            for prefix, folder in FUNCTIONS.items()
            if (ROOT / "functions" / folder / "app.py").exists()
        }
        warming = [
            threading.Thread(target=function.warm, daemon=True)
            for function in self.functions.values()
        ]
        for thread in warming:
            thread.start()
        for thread in warming:
            thread.join()
        # The scheduled functions run in this process: Powertools keeps its logger's and
        # metrics' state per process, so one of them at a time, as in a Lambda container.
        self._one_at_a_time = threading.Lock()
        self._stopping = threading.Event()
        self.cors_of = {
            prefix: dataclasses.replace(cors, allow_methods=methods)
            for prefix, methods in CORS_METHODS.items()
        }
        self._async = {name: AsyncFunction(name, limit) for name, limit in ASYNC_FUNCTIONS.items()}

    def invoke(self, prefix: str, event: dict[str, Any]) -> HttpResponse:
        context = LambdaContext(
            function_name=prefix, aws_request_id=event["requestContext"]["requestId"]
        )
        try:
            result = self.functions[prefix].invoke(event, context)
            return to_http(result)
        except Exception:  # HandlerFailed, ContainerDied: what Lambda answers when it crashes
            return HttpResponse(
                502,
                [("content-type", "application/json")],
                b'{"message":"Internal Server Error"}',
            )

    def run_job_every(self, job: str, seconds: float) -> threading.Thread:
        """Invoke the scheduled function ``job`` every ``seconds``, on a daemon thread: one the
        others also start asynchronously beside them (``ASYNC_FUNCTIONS``), the rest one
        invocation at a time, in this process."""
        started = self._async.get(job)
        handler = load_handler(job) if started is None else None
        event = {"source": "schedule", "job": job}

        def loop() -> None:
            while not self._stopping.wait(seconds):
                if started is not None:
                    started.start(event)
                else:
                    assert handler is not None
                    _run_once(job, handler, event, self._one_at_a_time)

        thread = threading.Thread(target=loop, name=job, daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """End the functions' containers."""
        self._stopping.set()
        for function in self.functions.values():
            function.close()

    def invoke_async(self, name: str, headers: Any, body: bytes) -> HttpResponse:
        """Lambda's Invoke API for ``InvocationType: Event``: 202 at once, then the function
        runs with the payload as its event."""
        function = self._async.get(name)
        if function is None:
            return _lambda_error(404, "ResourceNotFoundException", f"Function not found: {name}")
        if (headers.get("x-amz-invocation-type") or "RequestResponse") != "Event":
            return _lambda_error(
                400, "InvalidParameterValueException", "Only Event invocations run here"
            )
        try:
            event = json.loads(body or b"{}")
        except ValueError:
            return _lambda_error(400, "InvalidRequestContentException", "Could not parse JSON")
        function.start(event)
        return HttpResponse(202, [("x-amzn-requestid", str(uuid.uuid4()))], b"")

    def auth_call(
        self, method: str, path: str, query: str, body: bytes, headers: Any
    ) -> HttpResponse:
        """The dev stand-in for the Supabase Auth endpoints supabase-js uses (local only)."""
        if self.auth is None:
            return _json(503, {"code": 503, "msg": "dev sign-in needs the local database"})
        version = headers.get(dev_auth.API_VERSION_HEADER)
        params = parse_qs(query)
        if path == "/auth/v1/token" and method == "POST":
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                payload = None
            grant = params.get("grant_type", [None])[0]
            answer = self.auth.token(grant, payload, version)
        elif path == "/auth/v1/user" and method == "GET":
            answer = self.auth.user(headers.get("authorization"), version)
        elif path == "/auth/v1/logout" and method == "POST":
            scope = params.get("scope", ["global"])[0]
            answer = self.auth.logout(headers.get("authorization"), scope, version)
        elif path in AUTH_ROUTES:  # what Auth's router answers a route's other methods
            return HttpResponse(405, [], b"")
        else:  # and a route it does not have
            return HttpResponse(404, [("content-type", "text/plain; charset=utf-8")], NOT_FOUND)
        status, data, extra = answer
        if data is None:
            return HttpResponse(status, extra, b"")
        response = _json(status, data)
        response.headers += extra
        return response

    def rest_call(
        self, method: str, path: str, query: str, headers: Any, body: bytes
    ) -> HttpResponse:
        """The dev stand-in for PostgREST (local only)."""
        if self.rest is None:
            return _json(503, {"code": "PGRST000", "message": "dev REST needs the local database"})
        return self.rest.handle(method, path, query, headers, body)

    def storage_call(
        self, method: str, path: str, query: str, headers: Any, body: bytes
    ) -> HttpResponse:
        """The dev stand-in for the Supabase Storage API (local only)."""
        if self.storage is None:
            return _json(
                500,
                {"statusCode": "500", "error": "Internal", "message": "dev storage is not set up"},
            )
        return self.storage.handle(method, path, query, headers, body)


def _lambda_error(status: int, kind: str, message: str) -> HttpResponse:
    response = _json(status, {"Type": "User", "message": message})
    response.headers.append(("x-amzn-errortype", kind))
    return response


def _json(status: int, body: Any) -> HttpResponse:
    return HttpResponse(
        status, [("content-type", "application/json")], json.dumps(body).encode("utf-8")
    )


def make_request_handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    # The dev sign-in and reads stand in for Supabase Auth and PostgREST: the headers
    # supabase-js sends them, and the one Auth answers with that a client reads.
    dev_cors = dataclasses.replace(
        gateway.cors,
        allow_headers=(
            *gateway.cors.allow_headers,
            "apikey",
            "x-client-info",
            "x-supabase-api-version",
            "accept-profile",
            "content-profile",
            "prefer",
            "x-upsert",
            "cache-control",
        ),
        expose_headers=(*gateway.cors.expose_headers, "x-supabase-api-version", "content-range"),
        allow_methods=("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"),
    )

    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Keep-alive answers go out at once (Nagle would hold them ~40 ms waiting for an ACK).
        disable_nagle_algorithm = True
        server_version = "wa-gateway-local"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the functions log for themselves; request lines would only add noise

        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def do_PUT(self) -> None:
            self._dispatch()

        def do_DELETE(self) -> None:
            self._dispatch()

        def do_PATCH(self) -> None:
            self._dispatch()

        def do_OPTIONS(self) -> None:
            self._dispatch()

        def do_HEAD(self) -> None:
            self._dispatch()

        def _dispatch(self) -> None:
            url = urlsplit(self.path)
            storage = url.path.startswith(dev_storage.PREFIX + "/")
            try:
                body = read_body(
                    self.headers,
                    self.rfile,
                    dev_storage.MAX_UPLOAD_BYTES if storage else MAX_REQUEST_BYTES,
                )
            except BodyRefused as refused:
                self.close_connection = True  # the rest of the body is still on the wire
                if refused.status == 413:
                    self._send(
                        dev_storage.too_large().response()
                        if storage
                        else _json(413, {"message": "Request must be smaller than 6291456 bytes"})
                    )
                else:
                    self._send(_json(400, {"message": refused.message}))
                return
            parts = url.path.split("/", 2)
            prefix = parts[1] if len(parts) > 1 else ""
            rest = "/" + parts[2] if len(parts) > 2 else "/"
            origin = self.headers.get("origin")

            if prefix in gateway.functions:
                browser = prefix in BROWSER_FACING
                cors = gateway.cors_of.get(prefix, gateway.cors)
                if (
                    self.command == "OPTIONS"
                    and browser
                    and self.headers.get("access-control-request-method")
                ):
                    self._send(cors.preflight(origin))
                    return
                event = build_event(
                    method=self.command,
                    path=rest,
                    raw_query=url.query,
                    headers=self.headers.items(),
                    body=body,
                    source_ip=self.client_address[0],
                    domain=self.headers.get("host", "localhost"),
                )
                response = gateway.invoke(prefix, event)
                if browser:
                    cors.apply(response, origin)
                self._send(response)
            elif (invoked := INVOKE_PATH.match(url.path)) and self.command == "POST":
                self._send(gateway.invoke_async(invoked[1], self.headers, body))
            elif url.path.startswith("/auth/v1/") and self.command == "OPTIONS":
                self._send(dev_cors.preflight(origin))
            elif url.path.startswith("/auth/v1/"):
                response = gateway.auth_call(self.command, url.path, url.query, body, self.headers)
                dev_cors.apply(response, origin)
                self._send(response)
            elif self.command == "OPTIONS" and (url.path.startswith("/rest/v1/") or storage):
                self._send(dev_cors.preflight(origin))
            elif url.path.startswith("/rest/v1/"):
                response = gateway.rest_call(self.command, url.path, url.query, self.headers, body)
                dev_cors.apply(response, origin)
                self._send(response)
            elif storage:
                response = gateway.storage_call(
                    self.command, url.path, url.query, self.headers, body
                )
                dev_cors.apply(response, origin)
                self._send(response)
            elif self.command in ("GET", "HEAD"):
                self._send_page(url.path.removeprefix("/") or "index.html")
            else:
                self._send(_json(404, {"message": "Not Found"}))

        def _send_page(self, name: str) -> None:
            """A file of the demo page (``web/``), served as any static host would."""
            root = PAGE_DIR.resolve()
            path = (root / name).resolve()
            if not path.is_file() or root not in path.parents:
                self._send(_json(404, {"message": "Not Found"}))
                return
            kind = PAGE_TYPES.get(path.suffix, "application/octet-stream")
            headers = [("content-type", kind), ("cache-control", "no-cache")]
            self._send(HttpResponse(200, headers, path.read_bytes()))

        def _send(self, response: HttpResponse) -> None:
            self.send_response(response.status)
            names = {name.lower() for name, _ in response.headers}
            for name, value in response.headers:
                self.send_header(name, value)
            if "content-length" not in names:
                self.send_header("content-length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

    return RequestHandler


class _Server(ThreadingHTTPServer):
    # The standard library's listen backlog is 5: a burst of browser or test requests (16 at
    # once with one Idempotency-Key) would be reset by the kernel instead of waiting its turn.
    request_queue_size = 128
    gateway: Gateway | None = None

    def server_close(self) -> None:
        super().server_close()
        if self.gateway is not None:
            self.gateway.close()


def serve(host: str, port: int) -> ThreadingHTTPServer:
    """Build the gateway from the environment and return its (not yet serving) server."""
    from wa_gateway import runtime  # the functions' own settings, read from this environment

    settings = runtime.settings()
    gateway = Gateway(
        dsn=settings.database_url,
        jwt_secret=settings.supabase_jwt_secrets[0] if settings.supabase_jwt_secrets else None,
        issuer=settings.supabase_jwt_issuer or f"http://{host}:{port}/auth/v1",
        cors=CorsConfig(allow_origins=settings.allowed_origins),
        # Shorter-lived access tokens, for tests of the page's refresh (default an hour).
        token_lifetime_s=int(
            os.environ.get("DEV_AUTH_TOKEN_LIFETIME_S") or dev_auth.TOKEN_LIFETIME_S
        ),
        storage_dir=Path(os.environ["DEV_STORAGE_DIR"])
        if os.environ.get("DEV_STORAGE_DIR")
        else None,
    )
    server = _Server((host, port), make_request_handler(gateway))
    server.daemon_threads = True
    server.gateway = gateway
    for job, every in PERIODIC_JOBS.items():
        if os.environ.get(every):
            gateway.run_job_every(job, float(os.environ[every]))
        elif job == "delivery" and settings.database_url and settings.encryption_key:
            gateway.run_job_every(job, 60)
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    server = serve(args.host, args.port)
    # Stopped with SIGTERM (local.processes.stop): end the containers on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"gateway listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
