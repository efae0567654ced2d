"""Resolve pod names with dnspython, asking a given nameserver or the system's resolver."""

from __future__ import annotations

import dns.exception
import dns.resolver


def make_resolver(
    nameserver: tuple[str, int] | None, timeout: float = 1.0
) -> dns.resolver.Resolver:
    """A resolver with a short per-query lifetime; callers retry on their own schedule."""
    resolver = dns.resolver.Resolver(configure=nameserver is None)
    if nameserver is not None:
        resolver.nameservers = [nameserver[0]]
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
