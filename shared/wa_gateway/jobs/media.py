"""The media pass: received files fetched from their hosts and kept, off the webhook's path.

The webhook and reconcile store a message with its file pending and due at once, then start the
media function for it (``wa_gateway.lambda_invoke``), so a file is kept seconds after its
message; the same function also runs every minute on a schedule, for the files a start missed
and those to try again. A pass claims due files of connected sessions under a lease (two passes
never fetch one file together), counts the try and sets when the next is due (a wait that
doubles); a file tried ``max_attempts`` times and still not given is unavailable
(``gateway_claim_media``). Fetching one file is ``media.incoming``'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from wa_gateway.media.incoming import IncomingMedia
from wa_gateway.observability import RunReport, logger
from wa_gateway.pass_records import MediaClaim
from wa_gateway.store import Store

_RESERVE_S = 20.0  # stop claiming when less than this is left of the invocation


@dataclass
class MediaReport(RunReport):
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # stored, retry, unavailable...
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        """The metrics of a pass (``media-<outcome>``: stored, retry, unavailable...)."""
        return dict(self.outcomes)


@dataclass
class MediaPass:
    store: Store
    fetcher: Callable[[], IncomingMedia]
    batch_size: int = 10
    lease_s: int = 120  # above a try's longest: its download, decrypt retries and upload
    retry_s: int = 30
    max_attempts: int = 5

    def run(
        self, remaining_s: Callable[[], float], *, message_ids: Sequence[str] | None = None
    ) -> MediaReport:
        """Fetch due files (only ``message_ids``, when given) until none is due or time runs
        short; the rest wait for the next pass."""
        started = time.monotonic()
        report = MediaReport()
        wanted = tuple(message_ids) if message_ids is not None else None
        while remaining_s() > _RESERVE_S:
            claimed = self.store.claim_media(
                MediaClaim(self.batch_size, self.lease_s, self.retry_s, self.max_attempts, wanted)
            )
            if not claimed:
                break
            report.claimed += len(claimed)
            fetcher = self.fetcher()
            for job in claimed:
                state = fetcher.fetch(job).state
                report.outcomes[state] = report.outcomes.get(state, 0) + 1
            if wanted is not None or len(claimed) < self.batch_size:
                break
        report.seconds = time.monotonic() - started
        if report.claimed:
            logger.info("media pass", extra=report.as_dict())
        return report
