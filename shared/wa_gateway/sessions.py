"""Session use cases: start (pairing by QR or by code), status (with a fresh look at the host),
disconnect.

Free of Lambda types: the functions parse the request, call these, and shape the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wa_gateway import qr, transitions, webhook_auth
from wa_gateway.caller import Caller
from wa_gateway.crypto import Keyring
from wa_gateway.errors import AccountLimit, HostError, HostTimeout, NoCapacity
from wa_gateway.host import HostState
from wa_gateway.host_directory import HostDirectory
from wa_gateway.host_session import HostSession
from wa_gateway.records import HostPlacement, SessionRecord, SessionUpdate, StartRefusal
from wa_gateway.store import Store
from wa_gateway.validation import DEFAULT_ACCOUNT

PairingMethod = Literal["qr", "code"]


def session_name_for(user_id: str, account: str = DEFAULT_ACCOUNT) -> str:
    """The host session name: ``user_<uuid>`` for the default account, else
    ``user_<uuid>_<account>``."""
    return f"user_{user_id}" if account == DEFAULT_ACCOUNT else f"user_{user_id}_{account}"


@dataclass
class SessionService:
    store: Store
    hosts: HostDirectory
    keyring: Keyring | None
    webhook_url: str | None
    webhook_secret: str | None
    max_accounts: int = 3

    def status(self, caller: Caller, account: str = DEFAULT_ACCOUNT) -> SessionRecord | None:
        """The caller's session as stored, read under their identity."""
        return self.store.get_session(caller, session_name_for(caller.user_id, account))

    def start(
        self,
        caller: Caller,
        *,
        method: PairingMethod = "qr",
        phone: str | None = None,
        account: str = DEFAULT_ACCOUNT,
    ) -> SessionRecord:
        """Start pairing, or return the session as it is when there is nothing to start.

        Idempotent: a connected session, or one with a valid QR or pairing code, is returned
        without calling the host. Otherwise the host is asked to start (it does nothing if
        already starting) and its answer is applied like any event.
        """
        name = session_name_for(caller.user_id, account)
        plan = self.store.begin_start(
            user_id=caller.user_id,
            session_name=name,
            account=account,
            method=method,
            max_accounts=self.max_accounts,
            default_server_url=self.hosts.default_url,
        )
        if isinstance(plan, StartRefusal):
            raise NoCapacity() if plan.outcome == "no_capacity" else AccountLimit()
        if plan.action == "none":
            return plan.session

        host = self._host_session(name, plan.host, plan.host_token)
        webhook = self._webhook_url(name, plan.host.id if plan.host else None, plan.session.attempt)
        try:
            state = self._start_on_host(
                host, plan.action, phone if method == "code" else None, webhook
            )
        except (HostError, HostTimeout) as failure:
            # A start that opened this attempt and failed (the host refused, or never answered
            # even where the start stands) leaves the session disconnected, so it holds no
            # host capacity and the next start opens a new attempt.
            if plan.opened:
                self.store.apply_host_state(
                    SessionUpdate(name, "disconnected", reason=failure.code)
                )
            raise

        update = transitions.from_host_answer(name, state, after_start=True) or SessionUpdate(
            name, "starting"
        )
        update = qr.with_qr_image(update)._replace(host_token=host.new_token_ciphertext)
        result = self.store.apply_host_state(update)
        return result.session if result is not None else plan.session

    def refresh(self, caller: Caller, account: str = DEFAULT_ACCOUNT) -> SessionRecord | None:
        """Ask the host how the session is, and repair the stored row if the two disagree."""
        name = session_name_for(caller.user_id, account)
        found = self.store.session_for_host(user_id=caller.user_id, session_name=name)
        if found is None:
            return None
        host = self._host_session(name, found.host, found.host_token)
        state = host.call(lambda token: host.host.status_session(name, token))
        update = transitions.from_host_answer(name, state, after_start=False)
        session = found.session
        if update is not None and update.status != session.status:
            repaired = self.store.repair_session(name, update.status, reason=update.reason)
            session = repaired.session if repaired else session
        if update is not None and (update.qr_code or update.pairing_code):
            applied = self.store.apply_host_state(qr.with_qr_image(update))
            session = applied.session if applied else session
        if host.new_token_ciphertext:
            self.store.apply_host_state(
                SessionUpdate(name, session.status, host_token=host.new_token_ciphertext)
            )
        return session

    def disconnect(self, caller: Caller, account: str = DEFAULT_ACCOUNT) -> SessionRecord | None:
        """Log the session out of WhatsApp on the host and mark it disconnected. Idempotent."""
        name = session_name_for(caller.user_id, account)
        found = self.store.session_for_host(user_id=caller.user_id, session_name=name)
        if found is None:
            return None
        host = self._host_session(name, found.host, found.host_token)
        logged_out = host.call(lambda token: host.host.logout_session(name, token))
        if not logged_out:
            # Not connected (still pairing, or already gone): close the browser instead.
            host.call(lambda token: host.host.close_session(name, token))
        result = self.store.repair_session(name, "disconnected", reason="logged_out")
        return result.session if result is not None else found.session

    # --- host calls ---------------------------------------------------------------------

    def _start_on_host(
        self, host: HostSession, action: str, phone: str | None, webhook_url: str
    ) -> HostState:
        name = host.name
        try:
            if action == "restart":
                # The host restarts only a closed session: close the other pairing first.
                host.call(lambda token: host.host.close_session(name, token))
            return host.call(
                lambda token: host.host.start_session(
                    name, token, webhook_url=webhook_url, phone=phone
                )
            )
        except HostTimeout:
            # A held start that timed out has usually begun: ask where it stands.
            return host.call(lambda token: host.host.status_session(name, token))

    def _webhook_url(self, name: str, host_id: str | None, attempt: int) -> str:
        """Where the host posts this session's events: the proof names the session, its host
        and this attempt, so no other session, host or attempt can use it."""
        assert self.webhook_url and self.webhook_secret
        return webhook_auth.session_webhook_url(
            self.webhook_url, name, self.webhook_secret, host_id=host_id, attempt=attempt
        )

    def _host_session(
        self, name: str, placement: HostPlacement | None, ciphertext: str | None
    ) -> HostSession:
        assert self.keyring is not None, "this function was not configured with ENCRYPTION_KEY"
        return HostSession(self.hosts.client_for(placement), self.keyring, name, ciphertext)
