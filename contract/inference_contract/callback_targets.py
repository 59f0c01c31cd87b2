"""Which callback destinations may be contacted: the SSRF rules, shared by the API and the model services.

The API checks a callback_url when it is submitted; the model service checks the
address again when it sends, and connects to the address it checked. Both use
these rules, from the contract package both deploy units ship.

An address is refused unless it is globally routable: loopback (unless allowed
explicitly), private, link-local (169.254.0.0/16, the metadata server), CGNAT
(100.64.0.0/10), multicast, reserved, unspecified, documentation and benchmark
ranges, IPv6 ULA, link-local and site-local, and IPv4 addresses embedded in IPv6
(IPv4-mapped, NAT64, 6to4, Teredo) judged by the IPv4 address they carry.
requests-hardened's own filter is applied on top (see model_service.callbacks).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

# Hostnames of metadata servers, refused by name whatever they resolve to.
METADATA_HOSTNAMES = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog",
    "instance-data", "instance-data.ec2.internal",
})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Iterable[str]]

_ULA = ipaddress.ip_network("fc00::/7")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class ForbiddenTarget(ValueError):
    """The callback host is, or resolves to, an address the service must not contact."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    # IPv4-compatible (::a.b.c.d, deprecated), other than :: and ::1.
    if int(address) >> 32 == 0 and int(address) > 1:
        return ipaddress.IPv4Address(int(address))
    return None


def refusal(address: IPAddress, allow_loopback: bool) -> str | None:
    """Why this address may not be contacted, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = refusal(embedded, allow_loopback=False)
            return f"an IPv6 address carrying {embedded}, {reason}" if reason else \
                "an IPv6 address that embeds an IPv4 address"
        if address.scope_id:
            return "a scoped IPv6 address"
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address.is_link_local:
        return "a link-local address (where the metadata server is)"
    if address in ipaddress.ip_network("100.64.0.0/10"):
        return "a carrier-grade NAT address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "the unspecified address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if address in _ULA:
        return "a unique local (ULA) address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "not a globally routable address"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def check_name(host: str, allow_loopback: bool) -> IPAddress | None:
    """Refuse metadata hostnames, and judge an address literal; a name's addresses are not looked at here."""
    name = host.strip("[]").lower()
    if not name:
        raise ForbiddenTarget("the callback URL has no host")
    if name.rstrip(".") in METADATA_HOSTNAMES:
        raise ForbiddenTarget(f"{host} is a metadata server")
    try:
        literal = ipaddress.ip_address(name)
    except ValueError:
        return None
    reason = refusal(literal, allow_loopback)
    if reason:
        raise ForbiddenTarget(f"{host} is {reason}")
    return literal


def check_host(host: str, port: int, allow_loopback: bool,
               resolve: Resolver = system_resolver) -> list[IPAddress]:
    """Every address host resolves to, each allowed; ForbiddenTarget otherwise."""
    literal = check_name(host, allow_loopback)
    if literal is not None:
        return [literal]
    name = host.strip("[]").lower()
    try:
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(name, port)]
    except (OSError, UnicodeError, ValueError) as exc:
        raise ForbiddenTarget(f"{host} does not resolve ({type(exc).__name__})") from None
    if not addresses:
        raise ForbiddenTarget(f"{host} does not resolve")
    for address in addresses:
        reason = refusal(address, allow_loopback)
        if reason:
            raise ForbiddenTarget(f"{host} resolves to {address}, which is {reason}")
    return addresses
