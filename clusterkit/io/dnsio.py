"""Resolve pod names with dnspython, asking a given nameserver or the system's resolver."""

from __future__ import annotations

import ipaddress
import socket

import dns.exception
import dns.resolver

from clusterkit.core.slots import is_number


def make_resolver(
    nameserver: tuple[str, int] | None, timeout: float = 1.0
) -> dns.resolver.Resolver:
    """A resolver with a short per-query lifetime; callers retry on their own schedule.
    Raises ValueError when the nameserver is a name that does not resolve."""
    resolver = dns.resolver.Resolver(configure=nameserver is None)
    if nameserver is not None:
        resolver.nameservers = [address_of(nameserver[0])]
        resolver.port = nameserver[1]
    resolver.lifetime = timeout
    resolver.timeout = timeout
    # Absolute names only: no search-domain expansion of pod FQDNs.
    resolver.search = []
    resolver.use_search_by_default = False
    return resolver


def resolve_addresses(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """A records, else AAAA records, of `name`; [] when it does not exist (yet) or DNS is silent."""
    fqdn = name if name.endswith(".") else name + "."
    for rdtype in ("A", "AAAA"):
        try:
            answer = resolver.resolve(fqdn, rdtype, search=False)
        except dns.resolver.NoAnswer:
            continue
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers, dns.exception.Timeout):
            return []
        return sorted({rr.to_text() for rr in answer})
    return []


def resolve_first(resolver: dns.resolver.Resolver, name: str) -> str | None:
    """A pod's address (the first of its records in sorted order), or None."""
    addresses = resolve_addresses(resolver, name)
    return addresses[0] if addresses else None


def parse_nameserver(text: str) -> tuple[str, int]:
    """`host[:port]` or `[v6]:port` into (host, port); a bare v6 address keeps port 53.
    Raises ValueError naming what is wrong."""
    text = text.strip()
    host, port = text, "53"
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not [v6-address]:port")
        port = rest.removeprefix(":") or "53"
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or not is_number(port) or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host[:port] with port 1..65535")
    return host, int(port)


def address_of(host: str) -> str:
    """dnspython asks nameservers by IP: a name (kube-dns.kube-system) is looked up once here."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return str(socket.getaddrinfo(host, 53, proto=socket.IPPROTO_UDP)[0][4][0])
    except OSError as exc:
        raise ValueError(f"nameserver {host!r} does not resolve ({exc})") from None
