"""Addresses of, and clients for, pods by ordinal, that follow a pod to its new address: a pod
restarted during a Job run comes back at another IP under the same DNS name."""

from __future__ import annotations

import dns.resolver
import redis
import structlog

from clusterkit.core.naming import PodNaming
from clusterkit.io.access import Access
from clusterkit.io.dnsio import resolve_addresses
from clusterkit.io.redisio import PodConnector

log = structlog.get_logger()


class PodClients:
    """One client per pod, at the address its DNS name has now."""

    def __init__(
        self,
        resolver: dns.resolver.Resolver,
        naming: PodNaming,
        *,
        port: int,
        access: Access,
        timeout: float,
        addresses: dict[int, str] | None = None,
        clients: dict[int, redis.Redis] | None = None,
    ) -> None:
        self.resolver = resolver
        self.naming = naming
        self.port = port
        self.access = access
        self.timeout = timeout
        self.addresses: dict[int, str] = {} if addresses is None else addresses
        """Ordinal -> address; shared, and changed in place, with whoever passed it in."""
        self.clients: dict[int, redis.Redis] = {} if clients is None else clients

    def resolve(self, ordinal: int) -> str | None:
        found = resolve_addresses(self.resolver, self.naming.pod_fqdn(ordinal))
        if not found:
            return None
        known = self.addresses.get(ordinal)
        return known if known in found else found[0]

    def follow(self, ordinal: int) -> bool:
        """Connect to `ordinal` at the address its name has now (a new client if it moved);
        whether the name resolves."""
        ip = self.resolve(ordinal)
        if ip is None:
            return False
        old = self.addresses.get(ordinal)
        if old != ip:
            if old is not None:
                log.info("pod_moved", pod=self.naming.pod_name(ordinal), old_ip=old, ip=ip)
            self.drop(ordinal)
            self.addresses[ordinal] = ip
            connector = PodConnector(self.naming, self.port, self.access, self.timeout)
            self.clients[ordinal] = connector.connect(ordinal, ip)
        return True

    def drop(self, ordinal: int) -> None:
        self.addresses.pop(ordinal, None)
        client = self.clients.pop(ordinal, None)
        if client is not None:
            client.close()
