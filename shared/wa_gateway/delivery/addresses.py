"""Where events may be posted: ``https`` URLs whose host resolves only to public addresses.

An endpoint's URL is checked when it is added (its form, and an address written in it), and
again at every delivery after its name is resolved, so a name that later resolves inside (DNS
rebinding, a record changed after the check) is refused then; the delivery connects to the very
address that was checked (``wa_gateway.delivery.http``), never resolving the name twice.

Refused: loopback, private (RFC 1918, unique local), shared (100.64/10), link-local (with the
cloud metadata address 169.254.169.254), multicast, unspecified, reserved, documentation and
every other non-global address, in IPv4 and IPv6, also when an IPv6 address carries an IPv4 one
(IPv4-mapped, NAT64, 6to4, Teredo). With ``ALLOW_LOCAL_ENDPOINTS`` (the local stack and its
tests) ``http`` and loopback addresses are allowed too; nothing else is.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from wa_gateway.errors import EndpointNotAllowed, InvalidRequest

MAX_URL = 2048
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

Resolver = Callable[[str, int], Sequence[str]]


class EndpointUrl(NamedTuple):
    url: str
    scheme: str
    host: str
    port: int
    target: str  # the path and query, as the request line has them


def parse_url(url: Any, *, allow_local: bool) -> EndpointUrl:
    """``url`` as an endpoint, or the contract's error: 400 for what is not a URL, 422 for a
    URL events may not go to (its scheme, or an address written in it)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise InvalidRequest(f"'url' must be an https URL of at most {MAX_URL} characters.")
    if any(ord(c) <= 32 or ord(c) == 127 for c in url) or not url.isascii():
        raise InvalidRequest("'url' must be a URL without spaces, controls or non-ASCII text.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidRequest("'url' is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise InvalidRequest("'url' must be an https URL with a host.")
    if scheme == "http" and not allow_local:
        raise EndpointNotAllowed("Events are posted only to https URLs: 'url' is http.")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("'url' must not carry a user name or password.")
    if parts.fragment:
        raise InvalidRequest("'url' must not have a fragment (#...).")
    host = parts.hostname.lower().rstrip(".")
    literal = _literal(host)
    if literal is not None:
        reason = why_refused(literal, allow_local=allow_local)
        if reason:
            raise EndpointNotAllowed(f"Events are not posted to {reason}: {host}.")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return EndpointUrl(url, scheme, host, port or (443 if scheme == "https" else 80), target)


def why_refused(address: IpAddress, *, allow_local: bool) -> str | None:
    """Why events may not go to ``address`` (words for an error), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address.teredo:
            inner = address.teredo[1]
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:  # what it reaches is the IPv4 address it carries
            return why_refused(inner, allow_local=allow_local)
    if address.is_loopback:
        return None if allow_local else "a loopback address"
    if address in METADATA:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "an address that is not public"
    return None


class Unreachable(Exception):
    """A delivery that must not connect: ``reason`` is its error code (``blocked_address``,
    ``unresolved``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def resolve_system(host: str, port: int) -> Sequence[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def address_for(
    endpoint: EndpointUrl, *, allow_local: bool, resolve: Resolver = resolve_system
) -> str:
    """The address a delivery connects to: the name resolved now, every address it has
    checked (one refused refuses the name: it can be made to answer with either)."""
    literal = _literal(endpoint.host)
    if literal is not None:
        addresses: list[IpAddress] = [literal]
    else:
        try:
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(
                endpoint.host, endpoint.port)]  # fmt: skip
        except (OSError, UnicodeError, ValueError):
            raise Unreachable("unresolved") from None
    if not addresses:
        raise Unreachable("unresolved")
    if any(why_refused(a, allow_local=allow_local) for a in addresses):
        raise Unreachable("blocked_address")
    return str(addresses[0])


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
