"""The host clients of a container: the default host (``WPP_SERVER_URL``) and, when the pool
table has hosts, one client per pool host, each built once and reused while warm. A container
has one directory (``runtime.hosts``), so one pool of connections per host, whichever part
calls it; a part that must not wait long (the webhook's LID lookup) asks for a shorter read
timeout on the same connections."""

from __future__ import annotations

import threading

from wa_gateway.crypto import Keyring
from wa_gateway.errors import SettingsError
from wa_gateway.host.client import HostClient
from wa_gateway.records import HostPlacement
from wa_gateway.settings import Settings


def host_secret_context(url: str) -> str:
    """The associated data a pool host's secret key is encrypted with."""
    return f"host:{url}"


class HostDirectory:
    def __init__(self, settings: Settings, keyring: Keyring | None):
        self._settings = settings
        self._keyring = keyring
        self._default: HostClient | None = None
        self._pool: dict[tuple[str, str], HostClient] = {}
        self._lock = threading.Lock()

    @property
    def default_url(self) -> str | None:
        return self._settings.wpp_server_url

    def send_bound_s(self, *, media: bool) -> float:
        """The longest one send can take once its outbox row is held: the host's answer
        (connect, then the read timeout, or the start timeout for a file) and the database
        call that records it (``DB_TIMEOUT``)."""
        s = self._settings
        answer_s = s.host_start_timeout_s if media else s.host_read_timeout_s
        return s.host_connect_timeout_s + answer_s + s.db_timeout_s

    def client_for(
        self, placement: HostPlacement | None, *, read_timeout_s: float | None = None
    ) -> HostClient:
        """The client of the host a session lives on (None: the default host); with
        ``read_timeout_s``, one that waits at most that long for an answer."""
        client = self.default() if placement is None else self._pool_client(placement)
        return client if read_timeout_s is None else client.with_read_timeout(read_timeout_s)

    def _pool_client(self, placement: HostPlacement) -> HostClient:
        key = (placement.url, placement.secret_key)
        with self._lock:
            client = self._pool.get(key)
            if client is None:
                client = self._new_client(placement.url, self._decrypt(placement))
                self._pool[key] = client
            return client

    def default(self) -> HostClient:
        with self._lock:
            if self._default is None:
                s = self._settings
                if not s.wpp_server_url or not s.wpp_secret_key:
                    raise SettingsError("WPP_SERVER_URL and WPP_SECRET_KEY must be set")
                self._default = self._new_client(s.wpp_server_url, s.wpp_secret_key)
            return self._default

    def _decrypt(self, placement: HostPlacement) -> str:
        if self._keyring is None:
            raise SettingsError("ENCRYPTION_KEY must be set to use the host pool")
        return self._keyring.decrypt(
            placement.secret_key, context=host_secret_context(placement.url)
        )

    def _new_client(self, url: str, secret_key: str) -> HostClient:
        s = self._settings
        return HostClient(
            url,
            secret_key,
            connect_timeout_s=s.host_connect_timeout_s,
            read_timeout_s=s.host_read_timeout_s,
            start_timeout_s=s.host_start_timeout_s,
        )
