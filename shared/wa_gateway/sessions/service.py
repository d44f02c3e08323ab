"""Session use cases: start (pairing by QR or by code) and disconnect. (A status read needs
none of this: ``accounts.stored_session``.)

Free of Lambda types: the functions parse the request, call these, and shape the answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from wa_gateway.auth import webhook_proof
from wa_gateway.auth.caller import Caller
from wa_gateway.crypto import Keyring
from wa_gateway.errors import AccountLimit, HostError, HostTimeout, NoCapacity, SessionBusy
from wa_gateway.host.answers import HostState
from wa_gateway.host.directory import HostDirectory
from wa_gateway.host.session import HostSession
from wa_gateway.records import (
    HostPlacement,
    SessionRecord,
    SessionUpdate,
    StartPlan,
    StartRefusal,
    StartRequest,
    StartWait,
)
from wa_gateway.sessions import qr, transitions
from wa_gateway.sessions.accounts import session_name_for
from wa_gateway.store import Store
from wa_gateway.validation import DEFAULT_ACCOUNT

PairingMethod = Literal["qr", "code"]
# wppconnect's autoClose (its default, 60 s from a browser's start): the longest a pairing the
# product no longer follows keeps the host busy.
HOST_PAIRING_LIMIT_S = 60
# After a logout the old client notices within a second (it polls its registration), waits a
# second more, then closes its browser; our disconnect ends half a second into the logout (the
# server's own timer). The most a start waits, from then, for that browserClose.
LOGOUT_SETTLE_S = 3
# How often a waiting start asks the store again whether the old browser has closed.
_SETTLE_POLL_S = 0.25


@dataclass
class SessionService:
    store: Store
    hosts: HostDirectory
    keyring: Keyring | None
    webhook_url: str | None
    webhook_secret: str | None
    max_accounts: int = 3
    # A start that made no progress this long is stalled: the host's browser never launched.
    start_stuck_after_s: int = 90

    def start(
        self,
        caller: Caller,
        *,
        method: PairingMethod = "qr",
        phone: str | None = None,
        account: str = DEFAULT_ACCOUNT,
    ) -> SessionRecord:
        """Start pairing, or return the session as it is when there is nothing to start.

        Idempotent: a connected or syncing session, or one with a valid QR or pairing code,
        is returned without calling the host. Otherwise the host is asked to start (it does
        nothing if already starting) and its answer is applied like any event. Right after our
        logout the start waits (a few seconds at most) for the old browser to close, which
        would otherwise make the new one fail on the same profile; a start the host never got
        going (the entry stuck in INITIALIZING since ``start_stuck_after_s``) is closed on the
        host and started again. A host still running a pairing by the other method is
        :class:`SessionBusy` until that pairing ends.
        """
        name = session_name_for(caller.user_id, account)
        plan = self._begin_start(
            StartRequest(
                user_id=caller.user_id,
                session_name=name,
                account=account,
                method=method,
                max_accounts=self.max_accounts,
                default_server_url=self.hosts.default_url,
                logout_settle_s=LOGOUT_SETTLE_S,
                stuck_after_s=self.start_stuck_after_s,
            )
        )
        if plan.action == "none":
            return plan.session

        host = self._host_session(name, plan.host, plan.host_token)
        attempt = plan.session.attempt
        webhook = self._webhook_url(name, plan.host.id if plan.host else None, attempt)
        phone_code = phone if method == "code" else None
        try:
            state, anew = self._start_on_host(host, phone_code, webhook)
            if not anew and plan.stalled and state.status == "INITIALIZING":
                state, anew = self._start_stuck_again(host, phone_code, webhook)
        except (HostError, HostTimeout) as failure:
            # A start that opened this attempt and failed (the host refused, or never answered
            # even where the start stands) leaves the session disconnected, so it holds no
            # host capacity and the next start opens a new attempt.
            if plan.opened:
                self.store.apply_host_state(
                    SessionUpdate(name, "disconnected", reason=failure.code)
                )
            raise

        if not anew and _pairs_otherwise(state, method, restarting=plan.action == "restart"):
            # The host still runs a pairing the user left (cancelled, or by the other method),
            # and nothing it offers stops that browser: it ends at its autoClose.
            self.store.apply_host_state(
                SessionUpdate(
                    name, "disconnected", reason="host_busy", host_token=host.new_token_ciphertext
                )
            )
            raise SessionBusy(HOST_PAIRING_LIMIT_S)
        update = transitions.from_host_answer(name, state, after_start=True) or SessionUpdate(
            name, "starting"
        )
        update = qr.with_qr_image(update)._replace(
            host_token=host.new_token_ciphertext,
            host_attempt=attempt if anew else None,
            start_attempt=attempt,
        )
        result = self.store.apply_host_state(update)
        return result.session if result is not None else plan.session

    def disconnect(self, caller: Caller, account: str = DEFAULT_ACCOUNT) -> SessionRecord | None:
        """End the session and mark it disconnected. Idempotent.

        Connected on the host: logged out (the phone is unlinked). Still pairing: nothing is
        called on the host, because nothing there stops a pairing browser (close-session fails
        while a QR shows and leaves the browser running, and a start meanwhile would stick);
        it ends at its autoClose, and a start before then gets its pairing back. Closed or
        absent: nothing to do on the host.
        """
        name = session_name_for(caller.user_id, account)
        found = self.store.session_for_host(user_id=caller.user_id, session_name=name)
        if found is None:
            return None
        host = self._host_session(name, found.host, found.host_token)
        logged_out = host.call_if_connected(lambda token: host.host.logout_session(name, token))
        pairing = found.session.status in ("starting", "pairing")
        reason = "cancelled" if pairing and not logged_out else "logged_out"
        result = self.store.repair_session(name, "disconnected", reason=reason)
        return result.session if result is not None else found.session

    def _begin_start(self, request: StartRequest) -> StartPlan:
        """The store's plan, asked again while it says to wait (it stops saying so once the
        old browser has closed or ``LOGOUT_SETTLE_S`` has passed)."""
        while True:
            plan = self.store.begin_start(request)
            if isinstance(plan, StartRefusal):
                raise NoCapacity() if plan.outcome == "no_capacity" else AccountLimit()
            if not isinstance(plan, StartWait):
                return plan
            time.sleep(min(_SETTLE_POLL_S, max(plan.retry_in_s, 0.0)))

    # --- host calls ---------------------------------------------------------------------

    def _start_stuck_again(
        self, host: HostSession, phone: str | None, webhook_url: str
    ) -> tuple[HostState, bool]:
        """The host's entry is stuck in INITIALIZING (its browser never launched, so every
        start returns early): close-session resets it (answering 500, as the entry has no
        client to close), then a start launches a browser again."""
        name = host.name
        host.call(lambda token: host.host.close_session(name, token))
        return self._start_on_host(host, phone, webhook_url)

    def _start_on_host(
        self, host: HostSession, phone: str | None, webhook_url: str
    ) -> tuple[HostState, bool]:
        """Ask the host to start; with whether it launched a browser with this webhook URL.
        A running pairing is never closed first (see :meth:`disconnect`)."""
        name = host.name
        try:
            state = host.call(
                lambda token: host.host.start_session(
                    name, token, webhook_url=webhook_url, phone=phone
                )
            )
        except HostTimeout:
            # Early answers come at once: a held start that timed out has begun anew. Ask
            # where it stands.
            return host.call(lambda token: host.host.status_session(name, token)), True
        return state, transitions.host_started_anew(state)

    def _webhook_url(self, name: str, host_id: str | None, attempt: int) -> str:
        """Where the host posts this session's events: the proof names the session, its host
        and this attempt, so no other session, host or attempt can use it."""
        assert self.webhook_url and self.webhook_secret
        return webhook_proof.session_webhook_url(
            self.webhook_url, name, self.webhook_secret, host_id=host_id, attempt=attempt
        )

    def _host_session(
        self, name: str, placement: HostPlacement | None, ciphertext: str | None
    ) -> HostSession:
        assert self.keyring is not None, "this function was not configured with ENCRYPTION_KEY"
        return HostSession(self.hosts.client_for(placement), self.keyring, name, ciphertext)


def _pairs_otherwise(state: HostState, method: PairingMethod, *, restarting: bool) -> bool:
    """Whether a host that answered a start early is running a pairing other than the one
    asked for: by the other method, or (for a change of method) one still starting."""
    running = transitions.pairing_method_of(state)
    if running is not None:
        return running != method
    return restarting and state.status == "INITIALIZING"
