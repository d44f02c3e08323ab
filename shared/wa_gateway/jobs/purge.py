"""The purge job, on a schedule: look after the hosts, clear old QR codes, delete
long-disconnected sessions and clear what their hosts still keep of them, forget old events,
and move stored host tokens to the active encryption key.

* Hosts of the pool are health-checked; one that stops answering is marked ``down`` and its
  sessions ``disconnected`` (reason ``host_down``), so their next start places them anew. A
  ``draining`` host takes no new sessions; its sessions idle for ``DRAIN_IDLE_AFTER`` are
  closed.
* A deleted session's scheduled messages fail with ``account_removed`` in the same
  transaction: nothing could send them once it is gone.
* Deleting works in bounded batches, each one short transaction that skips rows in use; the
  run stops starting batches when the invocation's time runs low, and is safe to run again at
  any time. A host error for one session is counted and the run goes on.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from wa_gateway.crypto import DecryptionError, Keyring
from wa_gateway.errors import HostError, HostTimeout, SettingsError, StoreUnavailable
from wa_gateway.host.client import HostClient
from wa_gateway.host.directory import HostDirectory
from wa_gateway.host.session import HostSession
from wa_gateway.observability import logger
from wa_gateway.pass_records import PurgeBatch, PurgedSession, PurgeLimits, StoredToken
from wa_gateway.records import HostPlacement, HostRecord
from wa_gateway.store import Store

BATCH_SIZE = 1000
TIME_RESERVE_S = 10.0
HEALTH_ATTEMPTS = 3


@dataclass
class PurgeReport:
    hosts_checked: int = 0
    hosts_marked_down: int = 0
    sessions_disconnected: int = 0
    sessions_drained: int = 0
    qr_cleared: int = 0
    sessions_deleted: int = 0
    scheduled_failed: int = 0  # scheduled messages of deleted sessions (account_removed)
    host_sessions_cleared: int = 0
    host_errors: int = 0
    events_deleted: int = 0
    tokens_reencrypted: int = 0
    tokens_unreadable: int = 0
    batches: int = 0
    complete: bool = True
    seconds: float = 0.0

    def as_dict(self) -> dict[str, int | float | bool]:
        return asdict(self)


@dataclass
class Purger:
    store: Store
    hosts: HostDirectory
    keyring: Keyring | None
    qr_ttl_s: int
    stale_after_s: int
    event_retention_s: int = 30 * 86400
    drain_idle_after_s: int = 3600
    batch_size: int = BATCH_SIZE
    health_pause_s: float = 1.0

    @property
    def events_batch_size(self) -> int:
        return self.batch_size * 5  # an event row is small, and no host waits on it

    def run(self, remaining_s: Callable[[], float] = lambda: float("inf")) -> PurgeReport:
        started = time.monotonic()
        report = PurgeReport()
        if remaining_s() < TIME_RESERVE_S:
            report.complete = False
            logger.warning("purge skipped: too little time left", extra={"purge": report.as_dict()})
            return report
        # One round trip brings the pool and the first batch of every task; most runs need no
        # other call to the database.
        try:
            first = self.store.purge_first_pass(
                PurgeLimits(
                    qr_ttl_s=self.qr_ttl_s,
                    stale_after_s=self.stale_after_s,
                    batch_size=self.batch_size,
                    retention_s=self.event_retention_s,
                    events_batch_size=self.events_batch_size,
                    active_key_id=self._rotating_to(),
                )
            )
        except StoreUnavailable:
            # It could not finish (a batch ran past the statement timeout, or the database is
            # away): the hosts still get their health checks if the pool can be read.
            with contextlib.suppress(StoreUnavailable):
                self._look_after_hosts(self.store.hosts(), report)
            logger.warning("purge's first pass failed", extra={"purge": report.as_dict()})
            raise
        self._look_after_hosts(first.hosts, report)
        deleted = self._delete_stale(first.batch, report, remaining_s)
        if deleted:
            self._clear_on_hosts(deleted, {h.id: h for h in first.hosts}, report)
        self._forget_old_events(first.events_deleted, report, remaining_s)
        if self.keyring is not None and first.tokens:
            self._reencrypt_tokens(first.tokens, self.keyring, report, remaining_s)
        report.seconds = round(time.monotonic() - started, 3)
        logger.info("purge finished", extra={"purge": report.as_dict()})
        return report

    def _rotating_to(self) -> str | None:
        """The key stored host tokens move to, while the keyring still holds an older one to
        read them with. With one key nothing can move, and the database is spared a scan of
        every stored token on each run."""
        if self.keyring is None or len(self.keyring.key_ids) < 2:
            return None
        return self.keyring.active_key_id

    # --- hosts ------------------------------------------------------------------------------

    def _look_after_hosts(self, pool: list[HostRecord], report: PurgeReport) -> None:
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

    def _drain(self, host: HostRecord, report: PurgeReport) -> None:
        idle_before = datetime.now(UTC) - timedelta(seconds=self.drain_idle_after_s)
        for idle in self.store.host_sessions(host.id, idle_before=idle_before.isoformat()):
            try:
                self._close(idle, host.placement)
            except (HostError, HostTimeout):
                report.host_errors += 1
                continue
            self.store.repair_session(idle.session_id, "disconnected", reason="host_draining")
            report.sessions_drained += 1

    # --- sessions ---------------------------------------------------------------------------

    def _delete_stale(
        self, batch: PurgeBatch, report: PurgeReport, remaining_s: Callable[[], float]
    ) -> list[PurgedSession]:
        """Counts the first batch, then runs more while batches come back full."""
        deleted: list[PurgedSession] = []
        while True:
            report.batches += 1
            report.qr_cleared += batch.qr_cleared
            report.sessions_deleted += len(batch.deleted)
            report.scheduled_failed += batch.scheduled_failed
            deleted.extend(batch.deleted)
            if batch.qr_cleared < self.batch_size and len(batch.deleted) < self.batch_size:
                return deleted
            if remaining_s() < TIME_RESERVE_S:
                report.complete = False
                return deleted
            batch = self.store.purge_batch(
                qr_ttl_s=self.qr_ttl_s,
                stale_after_s=self.stale_after_s,
                batch_size=self.batch_size,
            )

    def _clear_on_hosts(
        self, deleted: list[PurgedSession], pool: dict[str, HostRecord], report: PurgeReport
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

    # --- events and keys --------------------------------------------------------------------

    def _forget_old_events(
        self, deleted: int, report: PurgeReport, remaining_s: Callable[[], float]
    ) -> None:
        """Counts the first batch, then runs more while batches come back full."""
        while True:
            report.events_deleted += deleted
            if deleted < self.events_batch_size:
                return
            if remaining_s() < TIME_RESERVE_S:
                report.complete = False
                return
            deleted = self.store.purge_events(
                retention_s=self.event_retention_s, batch_size=self.events_batch_size
            )

    def _reencrypt_tokens(
        self,
        page: list[StoredToken],
        keyring: Keyring,
        report: PurgeReport,
        remaining_s: Callable[[], float],
    ) -> None:
        """Move stored host tokens to the active key, so an old key can be retired: the first
        page, then the next ones while pages come back full."""
        while page:
            replacements = []
            for token in page:
                try:
                    plain = keyring.decrypt(token.ciphertext, context=token.session_name)
                except DecryptionError:
                    report.tokens_unreadable += 1  # a new one is generated on next use
                    continue
                replacements.append(
                    {
                        "session_id": token.session_row_id,
                        "old_token": token.ciphertext,
                        "host_token": keyring.encrypt(plain, context=token.session_name),
                    }
                )
            if replacements:
                report.tokens_reencrypted += self.store.replace_tokens(replacements)
            if len(page) < self.batch_size:
                return
            if remaining_s() < TIME_RESERVE_S:
                report.complete = False
                return
            page = self.store.tokens_to_reencrypt(
                active_key_id=keyring.active_key_id,
                after=page[-1].session_row_id,
                limit=self.batch_size,
            )
