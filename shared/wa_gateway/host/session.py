"""Calls to the host on behalf of one session, with that session's bearer token.

The token (from the host's ``generate-token``) is kept encrypted in the store. It is decrypted
when present, generated when missing or unreadable, and generated again once if the host
refuses it (the host's secret key changed); :attr:`new_token_ciphertext` then holds what to
store.
"""

from __future__ import annotations

from collections.abc import Callable

from wa_gateway.crypto import DecryptionError, Keyring
from wa_gateway.errors import HostError, HostTimeout
from wa_gateway.host.answers import HostUnauthorized
from wa_gateway.host.client import HostClient
from wa_gateway.observability import logger


class HostSession:
    def __init__(self, host: HostClient, keyring: Keyring, name: str, ciphertext: str | None):
        self.host = host
        self.name = name
        self._keyring = keyring
        self._token = self._decrypt(ciphertext)
        self._renewed = False

    def call[T](self, operation: Callable[[str], T]) -> T:
        """Run ``operation(token)``; on a refused token, get a new one and run it once more."""
        try:
            return operation(self._get_token())
        except HostUnauthorized:
            logger.info("host refused the session token; generating a new one")
            self._token = None
            try:
                return operation(self._get_token())
            except HostUnauthorized:
                raise HostError() from None

    def call_if_connected[T](self, operation: Callable[[str], T]) -> T | None:
        """Run ``operation(token)`` only if ``check-connection-session`` says the session is
        connected; None otherwise. Every route behind the host's statusConnection needs this:
        for a session without a live client it answers 404 and then runs its controller anyway,
        which can still act."""
        if not self.is_connected():
            return None
        return self.call(operation)

    def is_connected(self) -> bool:
        """``check-connection-session``: whether the host has the session's library client."""
        try:
            return self.call(lambda token: self.host.check_connection(self.name, token))
        except (HostError, HostTimeout) as failure:
            failure.maybe_acted = False  # the check itself acts on nothing
            raise

    @property
    def new_token_ciphertext(self) -> str | None:
        """The token to store, encrypted, if this session got a new one."""
        if not self._renewed or self._token is None:
            return None
        return self._keyring.encrypt(self._token, context=self.name)

    def _get_token(self) -> str:
        if self._token is None:
            self._token = self.host.generate_token(self.name)
            self._renewed = True
        return self._token

    def _decrypt(self, ciphertext: str | None) -> str | None:
        if ciphertext is None:
            return None
        try:
            return self._keyring.decrypt(ciphertext, context=self.name)
        except DecryptionError:
            logger.warning("stored host token unreadable; a new one will be generated")
            return None
