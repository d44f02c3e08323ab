"""The purge job, on a schedule: look after the hosts, clear old QR codes, delete
long-disconnected sessions and clear what their hosts still keep of them, forget old events,
delete messages older than the retention (``MESSAGE_RETENTION``; none unless set) and the
files of every deleted message, and move stored host tokens to the active encryption key.

* A message's files go with it, whatever deleted it (``purge_files``).
* Hosts of the pool are health-checked, a ``down`` one's sessions disconnected, a
  ``draining`` one's idle sessions closed (``purge_hosts``).
* A deleted session's scheduled messages fail with ``account_removed`` in the same
  transaction: nothing could send them once it is gone.
* Deleting works in bounded batches, each one short transaction that skips rows in use; the
  run stops starting batches when the invocation's time runs low, and is safe to run again at
  any time. A host error for one session is counted and the run goes on.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from wa_gateway.crypto import DecryptionError, Keyring
from wa_gateway.errors import StoreUnavailable
from wa_gateway.host.directory import HostDirectory
from wa_gateway.jobs.purge_files import FILES_PER_CALL, delete_files_of_deleted_messages
from wa_gateway.jobs.purge_hosts import HostCare
from wa_gateway.observability import RunReport, logger
from wa_gateway.pass_records import PurgeBatch, PurgedSession, PurgeLimits, StoredToken
from wa_gateway.store import Store

if TYPE_CHECKING:
    from wa_gateway.media.storage import MediaStore

BATCH_SIZE = 1000
TIME_RESERVE_S = 10.0


@dataclass
class PurgeReport(RunReport):
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
    messages_deleted: int = 0
    files_deleted: int = 0
    storage_errors: int = 0

    metric_fields = ("sessions_deleted", "qr_cleared", "host_errors")


@dataclass
class Purger(HostCare):
    store: Store
    hosts: HostDirectory
    keyring: Keyring | None
    qr_ttl_s: int
    stale_after_s: int
    event_retention_s: int = 30 * 86400
    drain_idle_after_s: int = 3600
    message_retention_s: int = 0  # 0: messages are kept
    media_store: Callable[[], MediaStore] | None = None  # None: Storage is not configured
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
                    message_retention_s=self.message_retention_s,
                    files_batch_size=FILES_PER_CALL,
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
        older = partial(self._delete_older, report=report, remaining_s=remaining_s)
        report.events_deleted += older(
            first.events_deleted,
            partial(self.store.purge_older, "events"),
            self.event_retention_s,
            self.events_batch_size,
        )
        report.messages_deleted += older(
            first.messages_deleted,
            partial(self.store.purge_older, "messages"),
            self.message_retention_s,
            self.batch_size,
        )
        if self.media_store is not None:  # without Storage, the files wait for a later run
            files = delete_files_of_deleted_messages(
                self.store, self.media_store, first.trash, lambda: remaining_s() >= TIME_RESERVE_S
            )
            report.files_deleted += files.deleted
            report.storage_errors += files.storage_errors
            report.complete = report.complete and files.complete
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

    # --- events and keys --------------------------------------------------------------------

    @staticmethod
    def _delete_older(
        first: int,
        purge: Callable[..., int],
        retention_s: int,
        batch_size: int,
        *,
        report: PurgeReport,
        remaining_s: Callable[[], float],
    ) -> int:
        """Rows older than ``retention_s``, deleted by ``purge`` a batch at a time: counts the
        first batch, then runs more while batches come back full; how many rows were deleted
        in all."""
        total, last = first, first
        while last >= batch_size:
            if remaining_s() < TIME_RESERVE_S:
                report.complete = False
                break
            last = purge(retention_s=retention_s, batch_size=batch_size)
            total += last
        return total

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
