"""The phone number behind a contact's privacy id (LID), asked of the host once per session.

WhatsApp may name a sender ``NNN@lid`` instead of by their number. The message is stored at
once with the LID and no phone; the webhook then asks the session's host
(``check-connection-session``, and only for a connected session ``contact/pn-lid``) with short
timeouts, and the store keeps the answer and fills the number in on that contact's messages.
A lookup that fails is only logged: the next message from that LID asks again (after
``gateway_store_inbound``'s retry interval), and until then replies can go to the LID itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from wa_gateway.crypto import Keyring
from wa_gateway.errors import HostError, HostTimeout, SettingsError
from wa_gateway.event_records import LidLookup
from wa_gateway.events.host_messages import digits_of
from wa_gateway.host.directory import HostDirectory
from wa_gateway.host.session import HostSession
from wa_gateway.observability import logger
from wa_gateway.store import Store

# The webhook answers the host after the lookup: it must stay short whatever the host does.
LOOKUP_READ_TIMEOUT_S = 2.0


@dataclass
class ContactLookup:
    store: Store
    hosts: HostDirectory
    keyring: Keyring | None

    def resolve(self, lookup: LidLookup) -> str | None:
        """Ask the host for the number behind ``lookup.lid`` and keep it; never raises."""
        if self.keyring is None or lookup.host_token is None:
            return None  # without the session's token the host cannot be asked
        try:
            host = HostSession(
                self.hosts.client_for(lookup.host, read_timeout_s=LOOKUP_READ_TIMEOUT_S),
                self.keyring,
                lookup.session_name,
                lookup.host_token,
            )
            # In a tuple, so "not connected" (None) differs from "the host cannot tell" ((None,)).
            answer = host.call_if_connected(
                lambda token: (host.host.phone_of_lid(lookup.session_name, token, lookup.lid),)
            )
            if answer is None:
                raise HostError(maybe_acted=False)  # not connected: ask again another time
            phone = digits_of(answer[0])
            self.store.remember_contact(lookup.session_name, lookup.lid, phone)
        except (HostError, HostTimeout, SettingsError) as failure:
            logger.info("LID lookup failed", extra={"reason": type(failure).__name__})
            return None
        return phone
