"""The delivery worker: what is pending, posted to each endpoint in order, endpoints side by side.

A run claims endpoints whose first pending delivery is due, most overdue first, each under a
lease (``gateway_claim_deliveries``: rows another worker holds are skipped), and serves up to
``concurrency`` of them at once, claiming more as each is done, until nothing is due or its
time is nearly up. Serving an endpoint posts its deliveries in order and stops at the first
that fails (what follows waits behind it: the order holds); then one round trip records the
attempts and, when all went through, renews the lease and brings the next batch
(``gateway_record_deliveries``). A failed delivery is tried again with a backoff that doubles
from ``DELIVERY_RETRY_BASE`` up to ``DELIVERY_RETRY_MAX``, and kept as failed once
``DELIVERY_RETRY_FOR`` (3 days) has gone by.

A worker that dies mid-delivery leaves its lease to run out (``DELIVERY_LEASE``); the next run
takes the endpoint again and posts again what was not recorded: at least once, in order, never
lost (receivers deduplicate by ``webhook-id``). One endpoint never holds more than one of the
worker's threads, its attempts are bounded (``DELIVERY_TIMEOUT`` each, at most 10 batches per
claim), so a slow endpoint delays its own deliveries only.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from wa_gateway.crypto import DecryptionError, Keyring
from wa_gateway.delivery import http, signing
from wa_gateway.delivery.addresses import (
    EndpointUrl,
    Resolver,
    Unreachable,
    address_for,
    parse_url,
    resolve_system,
)
from wa_gateway.delivery.store import Claim, DeliveryCalls, Pending, RetryPolicy
from wa_gateway.errors import ApiError
from wa_gateway.observability import RunReport, logger
from wa_gateway.settings import DeliveryPolicy

USER_AGENT = "wa-gateway-webhooks/1"
RESERVE_S = 2.0
"""Time kept back, past an attempt's timeout, for recording it before a lease or run ends."""

Post = Callable[..., http.Outcome]


@dataclass
class DeliveryReport(RunReport):
    endpoints: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    lost_leases: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    forgotten: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    metric_fields = ("delivered", "failed_attempts")

    def count(self, outcomes: list[tuple[int, http.Outcome]], lost: bool) -> None:
        with self._lock:
            self.lost_leases += lost
            for _, outcome in outcomes:
                if outcome.ok:
                    self.delivered += 1
                else:
                    self.failed_attempts += 1
                    code = outcome.error or "failed"
                    self.errors[code] = self.errors.get(code, 0) + 1


class Deliverer:
    def __init__(
        self,
        calls: DeliveryCalls,
        keyring: Keyring,
        policy: DeliveryPolicy,
        *,
        resolve: Resolver = resolve_system,
        post: Post = http.post,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.calls = calls
        self.keyring = keyring
        self.policy = policy
        self.retry = RetryPolicy(policy.retry_base_s, policy.retry_max_s, policy.retry_for_s)
        self._resolve = resolve
        self._post = post
        self._clock = clock

    def run(self, remaining_s: Callable[[], float], *, sweep: bool = False) -> DeliveryReport:
        """Deliver what is due until nothing is, or ``remaining_s()`` nears the end; a
        ``sweep`` (the scheduled run) also forgets notifications past the event retention."""
        started = time.monotonic()
        report = DeliveryReport()
        policy = self.policy
        active: set[Future[None]] = set()
        with ThreadPoolExecutor(policy.concurrency, thread_name_prefix="delivery") as pool:
            while True:
                claims: list[Claim] = []
                free = policy.concurrency - len(active)
                if free > 0 and remaining_s() > policy.timeout_s + RESERVE_S:
                    try:
                        claims = self.calls.claim(
                            limit=free, batch=policy.batch, lease_s=policy.lease_s
                        )
                    except ApiError as error:
                        logger.warning("delivery claim failed", extra={"code": error.code})
                for claim in claims:
                    report.endpoints += 1
                    active.add(pool.submit(self._serve, claim, remaining_s, report))
                if not active:
                    break
                if not claims or len(active) == policy.concurrency:
                    done, active = wait(active, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()
        if sweep:
            try:
                report.forgotten = self.calls.forget(older_than_s=policy.retention_s, limit=1000)
            except ApiError as error:
                logger.warning("forgetting notifications failed", extra={"code": error.code})
        report.seconds = time.monotonic() - started
        busy = report.endpoints or report.forgotten
        (logger.info if busy else logger.debug)("delivery run", extra=report.as_dict())
        return report

    def _serve(
        self, claim: Claim, remaining_s: Callable[[], float], report: DeliveryReport
    ) -> None:
        """Post the claimed endpoint's deliveries in order, recording each batch, until one
        fails, nothing more is due, or the claim has had its share."""
        try:
            secret: str | None = self.keyring.decrypt(claim.secret, context=claim.endpoint_id)
        except (DecryptionError, ValueError):
            secret = None
        try:
            endpoint: EndpointUrl | None = parse_url(claim.url, allow_local=self.policy.allow_local)
        except ApiError:
            endpoint = None
        token, deliveries = claim.lease_token, claim.deliveries
        leased_at = time.monotonic()
        for batch in range(1, self.policy.batches_per_claim + 1):
            results: list[tuple[int, http.Outcome]] = []
            for delivery in deliveries:
                if not self._time_for_attempt(leased_at, remaining_s):
                    break
                outcome = self._attempt(endpoint, secret, delivery)
                results.append((delivery.id, outcome))
                if not outcome.ok:
                    break
            finished = len(results) == len(deliveries) and all(o.ok for _, o in results)
            try:
                recorded = self.calls.record(
                    claim,
                    token,
                    results,
                    retry=self.retry,
                    more=finished and batch < self.policy.batches_per_claim,
                    batch=self.policy.batch,
                    lease_s=self.policy.lease_s,
                )
            except ApiError as error:  # the lease runs out; the next run posts them again
                logger.warning("recording deliveries failed", extra={"code": error.code})
                return
            report.count(results, recorded.lost)
            if recorded.lost or not recorded.deliveries or recorded.lease_token is None:
                return
            token, deliveries = recorded.lease_token, recorded.deliveries
            leased_at = time.monotonic()

    def _time_for_attempt(self, leased_at: float, remaining_s: Callable[[], float]) -> bool:
        """An attempt starts only if it can end, and be recorded, within the lease and run."""
        needed = self.policy.timeout_s + RESERVE_S
        lease_left = self.policy.lease_s - (time.monotonic() - leased_at)
        return lease_left > needed and remaining_s() > needed

    def _attempt(
        self, endpoint: EndpointUrl | None, secret: str | None, delivery: Pending
    ) -> http.Outcome:
        if secret is None:
            return http.Outcome(False, None, "secret")
        if endpoint is None:
            return http.Outcome(False, None, "blocked_address")
        try:
            address = address_for(
                endpoint, allow_local=self.policy.allow_local, resolve=self._resolve
            )
        except Unreachable as refused:
            return http.Outcome(False, None, refused.reason)
        body = json.dumps(delivery.body, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signing.headers(
                secret, message_id(delivery.notification_id), int(self._clock()), body
            ),
        }
        outcome: http.Outcome = self._post(
            endpoint, address, headers, body, timeout_s=self.policy.timeout_s
        )
        return outcome


def message_id(notification_id: int) -> str:
    """The ``webhook-id`` of a notification: the same on every attempt and every endpoint."""
    return f"msg_{notification_id}"
