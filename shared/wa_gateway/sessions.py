"""Session use cases: start (pairing by QR or by code) and status.

Free of Lambda types: the functions parse the request, call these, and shape the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from wa_gateway import qr, transitions, webhook_auth
from wa_gateway.crypto import DecryptionError, Keyring
from wa_gateway.errors import HostError, HostTimeout
from wa_gateway.host import HostClient, HostState, HostUnauthorized
from wa_gateway.observability import logger
from wa_gateway.store import SessionRecord, Store
from wa_gateway.store.facade import SessionUpdate
from wa_gateway.tokens import Caller

PairingMethod = Literal["qr", "code"]


def session_name_for(user_id: str) -> str:
    """The host session name of a user's default account."""
    return f"user_{user_id}"


@dataclass
class SessionService:
    store: Store
    host: HostClient | None
    keyring: Keyring | None
    webhook_url: str | None
    webhook_secret: str | None

    def status(self, caller: Caller) -> SessionRecord | None:
        return self.store.get_session(caller, session_name_for(caller.user_id))

    def start(
        self, caller: Caller, *, method: PairingMethod = "qr", phone: str | None = None
    ) -> SessionRecord:
        """Start pairing, or return the session as it is when there is nothing to start.

        Idempotent: a connected session, or one with a valid QR or pairing code, is returned
        without calling the host. Otherwise the host is asked to start (it does nothing if
        already starting) and its answer is applied like any event.
        """
        name = session_name_for(caller.user_id)
        assert self.host is not None and self.keyring is not None
        plan = self.store.begin_start(
            user_id=caller.user_id, session_name=name, method=method, server_url=self.host.base_url
        )
        if plan.action == "none":
            return plan.session

        token = self._decrypt(name, plan.host_token)
        fresh_token = token is None
        try:
            if token is None:
                token = self.host.generate_token(name)
            code_phone = phone if method == "code" else None
            state, new_token = self._start_on_host(plan.action, name, token, code_phone)
        except HostError:
            # A start that opened this attempt and failed leaves the session disconnected.
            if plan.opened:
                self.store.apply_host_state(
                    SessionUpdate(name, "disconnected", reason="host_error")
                )
            raise
        if new_token is not None:
            token, fresh_token = new_token, True

        update = transitions.from_host_answer(name, state, after_start=True) or SessionUpdate(
            name, "starting"
        )
        update = self._with_qr_image(update)
        if fresh_token:
            update = replace(update, host_token=self.keyring.encrypt(token, context=name))
        result = self.store.apply_host_state(update)
        return result.session if result is not None else plan.session

    # --- host calls ---------------------------------------------------------------------

    def _start_on_host(
        self, action: str, name: str, token: str, phone: str | None
    ) -> tuple[HostState, str | None]:
        assert self.host is not None
        host = self.host
        replaced: str | None = None
        try:
            if action == "restart":
                # The host restarts only a closed session; close the other pairing first.
                _, replaced = self._call_with_token(
                    name, token, lambda t: host.close_session(name, t)
                )
                token = replaced or token
            state, newer = self._call_with_token(
                name, token, lambda t: self._host_start(name, t, phone)
            )
        except HostTimeout:
            # A held start that timed out has usually begun: ask where it stands.
            state, newer = self._call_with_token(
                name, token, lambda t: host.status_session(name, t)
            )
        return state, newer or replaced

    def _host_start(self, name: str, token: str, phone: str | None) -> HostState:
        assert self.host is not None and self.webhook_url and self.webhook_secret
        url = webhook_auth.session_webhook_url(self.webhook_url, name, self.webhook_secret)
        return self.host.start_session(name, token, webhook_url=url, phone=phone)

    def _call_with_token[T](
        self, name: str, token: str, call: Callable[[str], T]
    ) -> tuple[T, str | None]:
        """Run ``call``; if the host refuses the token, get a new one and run it once more."""
        assert self.host is not None
        try:
            return call(token), None
        except HostUnauthorized:
            logger.info("host token refused; generating a new one", extra={"session": name})
            try:
                token = self.host.generate_token(name)
                return call(token), token
            except HostUnauthorized:
                raise HostError() from None

    def _decrypt(self, name: str, ciphertext: str | None) -> str | None:
        if ciphertext is None:
            return None
        assert self.keyring is not None
        try:
            return self.keyring.decrypt(ciphertext, context=name)
        except DecryptionError:
            logger.warning("stored host token unreadable; generating a new one")
            return None

    @staticmethod
    def _with_qr_image(update: SessionUpdate) -> SessionUpdate:
        if update.qr_code and not update.qr_image:
            return replace(update, qr_image=qr.png_data_url(update.qr_code))
        return update
