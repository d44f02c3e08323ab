"""Transport over Supabase's REST API, with supabase-py's PostgREST client.

Every call is ``POST /rest/v1/rpc/<function>`` with the named parameters as the JSON body.

Keys, as Supabase's API gateway wants them:

* service calls carry the service key. A secret key (``sb_secret_...``) is not a JWT: it goes
  in ``apikey`` only (the gateway turns it into a short-lived ``service_role`` JWT; sent as a
  Bearer token it is refused). A legacy ``service_role`` key is a JWT and goes in both
  ``apikey`` and ``Authorization: Bearer``;
* calls made for a user carry the user's own access token as ``Authorization: Bearer`` and
  the publishable key (``sb_publishable_...``, or the legacy ``anon`` key) as ``apikey``, never
  the service key: PostgREST switches to ``authenticated`` with their claims and RLS decides,
  exactly as for the browser.

Failures are judged by ``wa_gateway.store.failures``, the map the psycopg transport uses too.
supabase-py's own retries (GET and HEAD only) are off: a call is sent again only as that map
allows. One HTTP/1.1 client is kept for the container's life (HTTP/2 keep-alives go stale
across Lambda freezes), on the TLS context it shares with event delivery (``wa_gateway.tls``:
its CA bundle loaded once per container, not once per client). Its read timeout is above the
database's statement timeout (see ``Settings.db_http_timeout_s``), so the client never gives up
on a call that can still commit.
"""

from __future__ import annotations

from typing import Any

import httpx
from postgrest import SyncPostgrestClient

from wa_gateway.errors import SettingsError, StoreUnavailable
from wa_gateway.needs import is_secret_api_key
from wa_gateway.store.failures import CONNECTION_LOST, Retry, failure_of_answer, may_send_again
from wa_gateway.store.transport import DELIVERIES_HEADER, Call, Transport, deliveries_queued
from wa_gateway.tls import public_context

_CONNECTION_LOST = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class _FailedAnswer(Exception):
    def __init__(self, retry: Retry):
        super().__init__(retry.value)
        self.retry = retry


def service_headers(service_key: str) -> dict[str, str]:
    """The headers of a service call: a secret key as ``apikey`` only, a legacy service-role
    JWT as ``apikey`` and Bearer."""
    if is_secret_api_key(service_key):
        return {"apikey": service_key}
    return {"apikey": service_key, "Authorization": f"Bearer {service_key}"}


def user_headers(publishable_key: str, access_token: str) -> dict[str, str]:
    """The headers of a call made for a user: their token, and the publishable key."""
    return {"apikey": publishable_key, "Authorization": f"Bearer {access_token}"}


class PostgrestTransport(Transport):
    def __init__(
        self,
        supabase_url: str,
        service_key: str,
        *,
        publishable_key: str | None = None,
        timeout_s: float = 10.0,
    ):
        self._rest_url = f"{supabase_url.rstrip('/')}/rest/v1"
        self._publishable_key = publishable_key
        self._http = httpx.Client(
            http2=False,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0)),
            limits=httpx.Limits(max_keepalive_connections=4, keepalive_expiry=30),
            # Retries only a connection that could not be made: nothing was sent.
            transport=httpx.HTTPTransport(retries=1, verify=public_context()),
            event_hooks={"response": [_judge_answer, _note_deliveries]},
            trust_env=False,
        )
        self._service_client = self._client(service_headers(service_key))
        self.round_trips = 0

    def _client(self, headers: dict[str, str]) -> SyncPostgrestClient:
        return SyncPostgrestClient(
            self._rest_url, headers=headers, http_client=self._http, retry_enabled=False
        )

    def send(self, call: Call) -> Any:
        if call.caller is None:
            client = self._service_client
        elif self._publishable_key:
            client = self._client(user_headers(self._publishable_key, call.caller.token))
        else:
            raise SettingsError("SUPABASE_PUBLISHABLE_KEY must be set to read as a user")
        cause: Exception
        for attempt in (1, 2):
            self.round_trips += 1
            try:
                return client.rpc(call.function, dict(call.params)).execute().data
            except _FailedAnswer as exc:
                retry, cause = exc.retry, exc
            except _CONNECTION_LOST as exc:
                retry, cause = CONNECTION_LOST, exc
            except httpx.HTTPError as exc:  # a timeout, or no connection even after a retry
                retry, cause = Retry.NEVER, exc
            if attempt == 2 or not may_send_again(retry, repeatable=call.repeatable):
                raise StoreUnavailable() from cause
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._http.close()


def _note_deliveries(response: httpx.Response) -> None:
    """A call whose transaction queued deliveries to users' endpoints says so in a header."""
    if response.is_success and DELIVERIES_HEADER in response.headers:
        deliveries_queued.set(True)


def _judge_answer(response: httpx.Response) -> None:
    """Turn an error answer that means the store is unavailable into ``_FailedAnswer``; leave
    every other answer to the PostgREST client (its ``APIError``)."""
    if response.is_success:
        return
    response.read()
    retry = failure_of_answer(response.status_code, response.content)
    if retry is not None:
        raise _FailedAnswer(retry)
