"""Whether the host has a session's client, asked right before a send: behind the host's
status middleware a call for a dead session is answered 404 and then run all the same.

In a warm container the question (``check-connection-session``) runs beside the outbox write,
on the host and token the session used last (:meth:`ConnectionChecks.early`); its answer is
used only when the plan names the same route. A session the host has no client for is asked
why (:func:`not_connected`): one the host is still bringing up is a retry (``503
session_starting``), anything else a session gone.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, NoReturn

from wa_gateway.errors import HostError, HostTimeout, SessionNotConnected, SessionStarting
from wa_gateway.host.answers import HostSessionClosed
from wa_gateway.host.session import HostSession
from wa_gateway.messaging.host_calls import HostParts
from wa_gateway.records import COMING_UP, HostPlacement
from wa_gateway.send_records import SendPlan
from wa_gateway.store import Store

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

# How soon a send to a session the host is still bringing up may be tried again: the library
# makes a login usable about 1.2 s after it, a restore takes longer.
STARTING_RETRY_S = 3
# The sessions whose host (and token) a warm container remembers, for the early check.
_ROUTES_KEPT = 1024


class Route(NamedTuple):
    """Where a session's host calls go: its host and its encrypted host token."""

    host: HostPlacement | None
    token: str | None


class EarlyCheck(NamedTuple):
    """``check-connection-session`` started beside the outbox write, on the route the
    session used last."""

    route: Route
    host: HostSession
    connected: Future[bool]


@dataclass
class ConnectionChecks:
    """A container's early checks: the route each session used last, and the threads that
    ask."""

    _routes: dict[str, Route] = field(default_factory=dict)
    _checks: ThreadPoolExecutor | None = None

    def early(self, parts: HostParts, name: str) -> EarlyCheck | None:
        """Start ``check-connection-session`` in the background on the route this session
        used last in this container (none yet: None), to run while the outbox row is
        written. The check acts on nothing, so one whose answer goes unused costs nothing."""
        route = self._routes.get(name)
        if route is None or parts.keyring is None:
            return None
        host = HostSession(parts.hosts.client_for(route.host), parts.keyring, name, route.token)
        if self._checks is None:
            from concurrent.futures import ThreadPoolExecutor  # its module only when first used

            self._checks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="host-check")
        return EarlyCheck(route, host, self._checks.submit(host.is_connected))

    def checked(
        self, parts: HostParts, name: str, plan: SendPlan, early: EarlyCheck | None
    ) -> tuple[HostSession, bool]:
        """The session's host, and whether it has the session's client: the early check's
        answer when it asked the host and token the plan names, else a check now."""
        assert parts.keyring is not None
        route = Route(plan.host, plan.host_token)
        self._remember(name, route)
        if early is not None and early.route == route:
            return early.host, early.connected.result()
        host = HostSession(parts.hosts.client_for(plan.host), parts.keyring, name, plan.host_token)
        return host, host.is_connected()

    def _remember(self, name: str, route: Route) -> None:
        self._routes.pop(name, None)
        self._routes[name] = route
        if len(self._routes) > _ROUTES_KEPT:
            del self._routes[next(iter(self._routes))]


def not_connected(store: Store, host: HostSession, plan: SendPlan) -> NoReturn:
    """The host has no client for the session: ask it why. Still bringing the session up
    (a browser launching; a login the library is finishing, whose entry still shows its
    last QR): the row is withdrawn and the caller told to retry. Anything else (CLOSED, a
    QR for a session not logged in moments ago, an entry whose page died): the session is
    gone."""
    assert plan.message is not None
    name = host.name
    try:
        state = host.call(lambda token: host.host.status_session(name, token))
    except (HostError, HostTimeout) as failure:
        failure.maybe_acted = False  # nothing was sent
        raise
    raw = (state.status or "").upper()
    if raw == "INITIALIZING" or (raw in COMING_UP and plan.settling):
        if plan.message.send_at is not None:
            # A scheduled message waits for a later claim, as for any session not
            # connected at its time.
            store.finish_send(plan.message, "retryable", error_code=SessionNotConnected.code)
        else:
            # The row goes; a file sent inline, stored under its name, goes with it (the
            # purge deletes what a deleted message leaves in the trash).
            store.finish_send(plan.message, "withdrawn")
        raise SessionStarting(STARTING_RETRY_S)
    raise HostSessionClosed()
