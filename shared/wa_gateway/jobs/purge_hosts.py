"""The purge's part for the host pool: each host health-checked, one that stops answering
marked ``down`` and its sessions ``disconnected`` (reason ``host_down``, so their next start
places them anew); a ``draining`` host's sessions idle for ``DRAIN_IDLE_AFTER`` closed; and the
sessions the purge deleted cleared from the hosts that still keep them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Protocol

from wa_gateway.crypto import DecryptionError, Keyring
from wa_gateway.errors import HostError, HostTimeout, SettingsError
from wa_gateway.host.client import HostClient
from wa_gateway.host.directory import HostDirectory
from wa_gateway.host.session import HostSession
from wa_gateway.observability import logger
from wa_gateway.pass_records import PurgedSession
from wa_gateway.records import HostPlacement, HostRecord
from wa_gateway.store import Store

HEALTH_ATTEMPTS = 3


class HostCounts(Protocol):
    """What the purge's report counts of the hosts (``PurgeReport``)."""

    hosts_checked: int
    hosts_marked_down: int
    sessions_disconnected: int
    sessions_drained: int
    host_sessions_cleared: int
    host_errors: int


class HostCare:
    """The part of :class:`wa_gateway.jobs.purge.Purger` that looks after the hosts."""

    store: Store
    hosts: HostDirectory
    keyring: Keyring | None
    drain_idle_after_s: int
    health_pause_s: float

    def _look_after_hosts(self, pool: list[HostRecord], report: HostCounts) -> None:
        for host in pool:
            if host.state == "down":
                continue
            report.hosts_checked += 1
            error = self._health_error(host)
            if error is not None:
                report.hosts_marked_down += 1
                report.sessions_disconnected += self.store.mark_host(
                    host.id, ok=False, error=error, mark_down=True
                )
                logger.warning("host marked down", extra={"host": host.name, "error": error})
                continue
            self.store.mark_host(host.id, ok=True, error=None, mark_down=False)
            if host.state == "draining":
                self._drain(host, report)

    def _health_error(self, host: HostRecord) -> str | None:
        error = "unreachable"
        for attempt in range(HEALTH_ATTEMPTS):
            try:
                self.hosts.client_for(host.placement).health()
                return None
            except HostTimeout:
                error = "timeout"
            except (HostError, DecryptionError, SettingsError) as exc:
                error = type(exc).__name__
            if attempt + 1 < HEALTH_ATTEMPTS:
                time.sleep(self.health_pause_s)
        return error

    def _drain(self, host: HostRecord, report: HostCounts) -> None:
        idle_before = datetime.now(UTC) - timedelta(seconds=self.drain_idle_after_s)
        for idle in self.store.host_sessions(host.id, idle_before=idle_before.isoformat()):
            try:
                self._close(idle, host.placement)
            except (HostError, HostTimeout):
                report.host_errors += 1
                continue
            self.store.repair_session(idle.session_id, "disconnected", reason="host_draining")
            report.sessions_drained += 1

    def _clear_on_hosts(
        self, deleted: list[PurgedSession], pool: dict[str, HostRecord], report: HostCounts
    ) -> None:
        """Clear, on each host, the deleted sessions that host still keeps."""
        if self.keyring is None:
            return
        by_host: dict[str | None, list[PurgedSession]] = defaultdict(list)
        for gone in deleted:
            by_host[gone.host_id if gone.host_id in pool else None].append(gone)
        for host_id, sessions in by_host.items():
            placement = pool[host_id].placement if host_id else None
            if placement is None and self.hosts.default_url is None:
                continue
            try:
                kept = set(self.hosts.client_for(placement).list_sessions())
            except (HostError, HostTimeout, DecryptionError):
                report.host_errors += 1
                logger.warning("purge could not list a host's sessions; none cleared there")
                continue
            for gone in sessions:
                if gone.session_id not in kept:
                    continue
                try:
                    self._clear(gone, placement)
                    report.host_sessions_cleared += 1
                except (HostError, HostTimeout):
                    report.host_errors += 1

    def _clear(self, gone: PurgedSession, placement: HostPlacement | None) -> None:
        """Make sure the host can never bring a deleted session back (its startAllSession
        restores every login it keeps a profile for): a connected one is logged out, which
        unlinks the phone and deletes the profile; any other has its profile deleted."""
        assert self.keyring is not None
        client: HostClient = self.hosts.client_for(placement)
        name = gone.session_id
        session = HostSession(client, self.keyring, name, gone.host_token)
        if not session.call_if_connected(lambda token: client.logout_session(name, token)):
            client.clear_session_data(name)

    def _close(self, gone: PurgedSession, placement: HostPlacement | None) -> bool:
        assert self.keyring is not None
        client: HostClient = self.hosts.client_for(placement)
        session = HostSession(client, self.keyring, gone.session_id, gone.host_token)
        return session.call(lambda token: client.close_session(gone.session_id, token))
