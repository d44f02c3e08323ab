"""Transport over Supabase's REST API, with supabase-py's PostgREST client.

Every call is ``POST /rest/v1/rpc/<function>`` with the named parameters as the JSON body.
Service calls carry the service-role key; calls made for a user forward the user's own access
token, so PostgREST switches to ``authenticated`` with their claims and RLS decides, exactly as
for the browser. One HTTP/1.1 client is kept for the container's life (HTTP/2 keep-alives go
stale across Lambda freezes) with timeouts below the function's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from postgrest import APIError, SyncPostgrestClient

from wa_gateway.caller import Caller
from wa_gateway.errors import StoreUnavailable

_UNAVAILABLE_CODES = ("08", "53", "57P01", "PGRST000", "PGRST001", "PGRST002", "PGRST003")


class PostgrestTransport:
    def __init__(
        self,
        supabase_url: str,
        service_key: str,
        *,
        timeout_s: float = 5.0,
        http_client: httpx.Client | None = None,
    ):
        self._rest_url = f"{supabase_url.rstrip('/')}/rest/v1"
        self._service_key = service_key
        self._http = http_client or httpx.Client(
            http2=False,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0)),
            limits=httpx.Limits(max_keepalive_connections=4, keepalive_expiry=30),
            transport=httpx.HTTPTransport(retries=1),
        )
        self._service_client = self._client(service_key)
        self.round_trips = 0

    def _client(self, bearer: str) -> SyncPostgrestClient:
        return SyncPostgrestClient(
            self._rest_url,
            headers={"apikey": self._service_key, "Authorization": f"Bearer {bearer}"},
            http_client=self._http,
            retry_enabled=False,
        )

    def rpc(self, function: str, params: Mapping[str, Any], *, caller: Caller | None = None) -> Any:
        client = self._service_client if caller is None else self._client(caller.token)
        self.round_trips += 1
        try:
            response = client.rpc(function, dict(params)).execute()
        except httpx.HTTPError as exc:
            raise StoreUnavailable() from exc
        except APIError as exc:
            code = str(exc.code or "")
            if code.startswith(_UNAVAILABLE_CODES) or code in {"502", "503", "504"}:
                raise StoreUnavailable() from exc
            raise
        return response.data

    def close(self) -> None:
        self._http.close()
