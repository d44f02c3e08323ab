"""API keys and event delivery, measured on the bench's local stack.

``key_path``
    The status function, warm in this process, called alternately with a user's access token
    and with their API key (its owner already learnt by the container, as after its first
    call): p50 and p99 of each, their ratio, and the database round trips per call (the key is
    checked in the call's own round trip: the same count). The cold start of a key's first
    request is in ``cold_init_ms`` (``status (API key)``).
``delivery``
    Through the gateway process, as in production: a host event (the simulator's incoming
    message, posted to qr-webhook) to its arrival at a test endpoint (``local.endpoint_receiver``
    on 127.0.0.1), one at a time over several users: p50 and p99 (``delivery_latency_ms``).
    Then the worker's throughput: deliveries queued at once over 8 endpoints (one transaction,
    ``gateway_notify``), one kick, until the last arrives (``deliveries_per_s``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg
import requests

from bench.stack import Stack, User
from local.endpoint_receiver import EndpointReceiver

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def make_key(stack: Stack, user: User, scopes: list[str]) -> str:
    answer = stack.http.post(
        f"{stack.gateway_url}/api-keys/",
        headers={"authorization": f"Bearer {user.token}"},
        json={"name": "bench", "scopes": scopes},
        timeout=30,
    )
    answer.raise_for_status()
    secret: str = answer.json()["key"]["secret"]
    return secret


def key_path(
    handler: Handler,
    jwt_event: Callable[[], dict[str, Any]],
    key_event: Callable[[], dict[str, Any]],
    context: Callable[[dict[str, Any]], Any],
    round_trips: Callable[[], int],
    *,
    n: int,
    warmup: int,
) -> dict[str, Any]:
    times: dict[str, list[float]] = {"token": [], "key": []}
    trips: dict[str, list[int]] = {"token": [], "key": []}
    for i in range(warmup + n):
        for label, make in (("token", jwt_event), ("key", key_event)):
            event = make()
            before = round_trips()
            started = time.perf_counter()
            answer = handler(event, context(event))
            took = (time.perf_counter() - started) * 1000
            if answer["statusCode"] != 200:
                raise RuntimeError(f"status with a {label} answered {answer['statusCode']}")
            if i >= warmup:
                times[label].append(took)
                trips[label].append(round_trips() - before)
    result: dict[str, Any] = {"n": n}
    for label in times:
        result[label] = {
            "p50": _percentile(times[label], 0.5),
            "p99": _percentile(times[label], 0.99),
            "db_round_trips": max(trips[label]),
        }
    result["ratio_p50"] = round(result["key"]["p50"] / result["token"]["p50"], 3)
    return result


def delivery(
    stack: Stack, users: list[User], *, latency_n: int, throughput_n: int, progress: Any
) -> dict[str, Any]:
    with EndpointReceiver() as receiver:
        for i, user in enumerate(users):
            answer = stack.http.post(
                f"{stack.gateway_url}/api-keys/endpoints",
                headers={"authorization": f"Bearer {user.token}"},
                json={"url": f"{receiver.url}/u{i}", "events": ["message.received"]},
                timeout=30,
            )
            answer.raise_for_status()
        progress(f"delivery: latency, {latency_n} host events one at a time")
        latencies: list[float] = []
        for k in range(latency_n):
            i = k % len(users)
            path = f"/u{i}"
            before = len(receiver.received(path))
            started = time.time()
            stack.sim("POST", f"{users[i].session}/incoming", {"from": "5511912345678",
                                                               "body": f"latency {k}"})  # fmt: skip
            if not _wait(lambda p=path, b=before: len(receiver.received(p)) > b, 10):
                raise RuntimeError("a delivery did not arrive within 10 s")
            latencies.append((receiver.received(path)[before].at - started) * 1000)
        progress(f"delivery: throughput, {throughput_n} deliveries over {len(users)} endpoints")
        counts = {i: len(receiver.received(f"/u{i}")) for i in range(len(users))}
        with psycopg.connect(stack.dsn, autocommit=True) as conn:
            conn.execute(
                "select public.gateway_notify(u.id, 'message.received',"
                " jsonb_build_object('body', 'throughput ' || g))"
                " from unnest(%s::uuid[]) u(id), generate_series(1, %s) g",
                ([u.id for u in users], throughput_n // len(users)),
            )
        total = (throughput_n // len(users)) * len(users)
        started = time.time()
        requests.post(
            f"{stack.gateway_url}/2015-03-31/functions/delivery/invocations",
            headers={"x-amz-invocation-type": "Event"},
            timeout=10,
        ).raise_for_status()

        def delivered() -> int:
            return sum(len(receiver.received(f"/u{i}")) - counts[i] for i in range(len(users)))

        if not _wait(lambda: delivered() >= total, 120):
            raise RuntimeError(f"only {delivered()} of {total} deliveries arrived in 120 s")
        last = max(r.at for i in range(len(users)) for r in receiver.received(f"/u{i}"))
        seconds = last - started
    return {
        "delivery_latency_ms": {
            "p50": _percentile(latencies, 0.5),
            "p99": _percentile(latencies, 0.99),
            "mean": round(statistics.fmean(latencies), 2),
            "n": len(latencies),
        },
        "deliveries_per_s": round(total / seconds, 1),
        "delivery_throughput": {
            "deliveries": total,
            "endpoints": len(users),
            "seconds": round(seconds, 2),
        },
    }


def _wait(done: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.002)
    return done()
