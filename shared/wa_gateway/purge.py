"""The purge job: clear old QR codes, delete long-disconnected sessions, close what the host
still keeps of them, and move stored host tokens to the active encryption key.

Works in bounded batches (each one short transaction that skips rows in use), stops starting
new batches when the invocation's time runs low, and is safe to run again at any time. The
host is asked once which sessions it still keeps, and only those are closed there; a host
error for one session is counted and the run goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from wa_gateway.crypto import DecryptionError, Keyring
from wa_gateway.errors import HostError, HostTimeout
from wa_gateway.host import HostClient
from wa_gateway.host_session import HostSession
from wa_gateway.observability import logger
from wa_gateway.store import Store
from wa_gateway.store.facade import PurgedSession

BATCH_SIZE = 1000
TIME_RESERVE_S = 10.0


@dataclass
class PurgeReport:
    qr_cleared: int = 0
    sessions_deleted: int = 0
    host_sessions_closed: int = 0
    host_errors: int = 0
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
    host: HostClient | None
    keyring: Keyring | None
    qr_ttl_s: int
    stale_after_s: int
    batch_size: int = BATCH_SIZE

    def run(self, remaining_s: Callable[[], float] = lambda: float("inf")) -> PurgeReport:
        started = time.monotonic()
        report = PurgeReport()
        deleted: list[PurgedSession] = []
        while True:
            if remaining_s() < TIME_RESERVE_S:
                report.complete = False
                break
            batch = self.store.purge_batch(
                qr_ttl_s=self.qr_ttl_s,
                stale_after_s=self.stale_after_s,
                batch_size=self.batch_size,
            )
            report.batches += 1
            report.qr_cleared += batch.qr_cleared
            report.sessions_deleted += len(batch.deleted)
            deleted.extend(batch.deleted)
            if batch.qr_cleared < self.batch_size and len(batch.deleted) < self.batch_size:
                break
        if deleted:
            self._close_on_host(deleted, report)
        if self.keyring is not None:
            self._reencrypt_tokens(self.keyring, report, remaining_s)
        report.seconds = round(time.monotonic() - started, 3)
        logger.info("purge finished", extra={"purge": report.as_dict()})
        return report

    def _close_on_host(self, deleted: list[PurgedSession], report: PurgeReport) -> None:
        if self.host is None or self.keyring is None:
            return
        try:
            kept = set(self.host.list_sessions())
        except (HostError, HostTimeout):
            report.host_errors += 1
            logger.warning("purge could not list the host's sessions; none closed")
            return
        for gone in deleted:
            if gone.session_id not in kept:
                continue
            try:
                if self._close(gone):
                    report.host_sessions_closed += 1
            except (HostError, HostTimeout):
                report.host_errors += 1

    def _reencrypt_tokens(
        self, keyring: Keyring, report: PurgeReport, remaining_s: Callable[[], float]
    ) -> None:
        """Move stored host tokens to the active key, so an old key can be retired."""
        after: str | None = None
        while remaining_s() >= TIME_RESERVE_S:
            page = self.store.tokens_to_reencrypt(
                active_key_id=keyring.active_key_id, after=after, limit=self.batch_size
            )
            if not page:
                return
            after = page[-1].session_row_id
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
        report.complete = False

    def _close(self, gone: PurgedSession) -> bool:
        assert self.host is not None and self.keyring is not None
        host = self.host
        session = HostSession(host, self.keyring, gone.session_id, gone.host_token)
        return session.call(lambda token: host.close_session(gone.session_id, token))
