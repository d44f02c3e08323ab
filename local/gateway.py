"""The local stand-in for the functions' HTTPS URLs: one port, one path prefix per function.

``http://127.0.0.1:3000/<function>/...`` becomes the function-URL event AWS would send (path
``/...``), the function's handler runs in this process (imported once, so warm like a reused
Lambda container; one invocation at a time, as in Lambda), and its result goes back as HTTP
with the URL's CORS applied. Also serves,
on the same port, the stand-ins for Supabase's APIs an app calls with supabase-js or
supabase-py: Auth's sign-in (``/auth/v1/``, local.dev_auth), PostgREST (``/rest/v1/``,
local.dev_rest) and Storage (``/storage/v1/``, local.dev_storage, bytes in
``DEV_STORAGE_DIR``); and the demo page (``web/``, at ``/``). Bodies are read by
``Content-Length`` or chunked, within the caps (local.http_body). With
``LOCAL_SCHEDULER_EVERY_S`` or ``LOCAL_RECONCILE_EVERY_S`` set (``make dev`` sets 10 and 30),
it also runs the scheduler or reconcile function every so many seconds, as EventBridge runs
them in AWS. The delivery worker runs beside the functions, as its own Lambda would (not one at
a time with them: it waits on users' endpoints), up to 4 invocations at once: when a function
kicks it (the gateway answers Lambda's asynchronous Invoke, ``POST
/2015-03-31/functions/delivery/invocations``, which the functions reach through
``AWS_ENDPOINT_URL_LAMBDA``), and every ``LOCAL_DELIVERY_EVERY_S`` seconds (default 60, its
schedule in AWS).

Run: ``python -m local.gateway --port 3000`` with the stack's environment (see local.stack).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local import dev_auth, dev_rest, dev_storage
from local.function_url import CorsConfig, HttpResponse, LambdaContext, build_event, to_http
from local.http_body import BodyRefused, read_body

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "functions"
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
DELIVERY_FUNCTION = "delivery"
INVOKE_PATH = f"/2015-03-31/functions/{DELIVERY_FUNCTION}/invocations"
DELIVERY_INVOCATIONS = 4
# Scheduled functions run periodically when their variable holds a number of seconds.
PERIODIC_JOBS = {"scheduler": "LOCAL_SCHEDULER_EVERY_S", "reconcile": "LOCAL_RECONCILE_EVERY_S"}

Handler = Callable[[dict[str, Any], Any], Any]

# The Auth routes the dev sign-in serves; Auth's router answers any other path with this.
AUTH_ROUTES = {"/auth/v1/token", "/auth/v1/user", "/auth/v1/logout"}
NOT_FOUND = b"404 page not found\n"


def load_handler(folder: str) -> Handler | None:
    """Import ``functions/<folder>/app.py`` under a name of its own; None if absent."""
    path = FUNCTIONS_DIR / folder / "app.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"functions.{folder}.app", path)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Handler = module.handler
    return handler


# The scheduled functions, which EventBridge invokes (no URL).
SCHEDULED = ("purge", "scheduler", "reconcile", "delivery")


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
        self.handlers: dict[str, Handler] = {}
        for prefix, folder in FUNCTIONS.items():
            handler = load_handler(folder)
            if handler is not None:
                self.handlers[prefix] = handler
        # Powertools' resolver keeps the current event on a class attribute, shared by every
        # function in a process: a process serves one invocation at a time, as Lambda's do.
        self._one_at_a_time = threading.Lock()
        self._stopping = threading.Event()
        self._delivery_handler: Handler | None = None
        self._delivery_state = threading.Lock()
        self._delivery_running = 0
        self._delivery_again = False
        self.cors_of = {
            prefix: dataclasses.replace(cors, allow_methods=methods)
            for prefix, methods in CORS_METHODS.items()
        }

    def invoke(self, prefix: str, event: dict[str, Any]) -> HttpResponse:
        context = LambdaContext(
            function_name=prefix, aws_request_id=event["requestContext"]["requestId"]
        )
        try:
            with self._one_at_a_time:
                result = self.handlers[prefix](event, context)
            return to_http(result)
        except BaseException:  # what Lambda answers when the function itself crashes
            return HttpResponse(
                502,
                [("content-type", "application/json")],
                b'{"message":"Internal Server Error"}',
            )

    def run_job_every(self, job: str, seconds: float) -> threading.Thread:
        """Invoke the scheduled function ``job`` every ``seconds`` (one invocation at a time
        with the others, as in a Lambda container), on a daemon thread."""
        handler = load_handler(job)
        assert handler is not None

        def loop() -> None:
            event = {"source": "schedule", "job": job}
            while not self._stopping.wait(seconds):
                context = LambdaContext(function_name=job, aws_request_id="local")
                try:
                    with self._one_at_a_time:
                        handler(event, context)
                except Exception as exc:  # the function logs its own failures; keep going
                    print(f"{job} pass failed: {type(exc).__name__}", file=sys.stderr)

        thread = threading.Thread(target=loop, name=job, daemon=True)
        thread.start()
        return thread

    def run_delivery_worker(self, every_s: float) -> threading.Thread:
        """The delivery function, invoked on each kick (``kick``) and every ``every_s``
        seconds, beside the other functions, as Lambda invokes it: each invocation on a thread
        of its own, at most ``DELIVERY_INVOCATIONS`` at once (its reserved concurrency in
        AWS); a kick beyond that makes one more invocation when one ends."""
        handler = load_handler(DELIVERY_FUNCTION)
        assert handler is not None
        self._delivery_handler = handler

        def schedule() -> None:
            while not self._stopping.wait(every_s):
                self._invoke_delivery("schedule")

        thread = threading.Thread(target=schedule, name=DELIVERY_FUNCTION, daemon=True)
        thread.start()
        return thread

    def _invoke_delivery(self, source: str) -> None:
        with self._delivery_state:
            if self._delivery_running >= DELIVERY_INVOCATIONS:
                self._delivery_again = True
                return
            self._delivery_running += 1

        handler = self._delivery_handler
        assert handler is not None

        def invocation() -> None:
            context = LambdaContext(DELIVERY_FUNCTION, str(uuid.uuid4()), timeout_ms=120_000)
            try:
                handler({"source": source}, context)
            except Exception as exc:  # the function logs its own failures; keep going
                print(f"delivery run failed: {type(exc).__name__}", file=sys.stderr)
            finally:
                with self._delivery_state:
                    self._delivery_running -= 1
                    again, self._delivery_again = self._delivery_again, False
            if again:
                self._invoke_delivery("kick")

        threading.Thread(target=invocation, name=DELIVERY_FUNCTION, daemon=True).start()

    def kick(self, headers: Any) -> HttpResponse:
        """Lambda's asynchronous Invoke of the delivery function: queued, answered 202."""
        if (headers.get("x-amz-invocation-type") or "").lower() != "event":
            return _json(400, {"Type": "User", "message": "Only Event invocations are served."})
        if self._delivery_handler is None:
            return _json(404, {"Type": "User", "message": "The delivery function is not running."})
        self._invoke_delivery("kick")
        return HttpResponse(202, [("content-type", "application/json")], b"")

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

            if prefix in gateway.handlers:
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
            elif url.path == INVOKE_PATH and self.command == "POST":
                self._send(gateway.kick(self.headers))
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
    for job, every in PERIODIC_JOBS.items():
        if os.environ.get(every):
            gateway.run_job_every(job, float(os.environ[every]))
    if settings.database_url and settings.encryption_key:
        gateway.run_delivery_worker(float(os.environ.get("LOCAL_DELIVERY_EVERY_S") or 60))
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    server = serve(args.host, args.port)
    print(f"gateway listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
