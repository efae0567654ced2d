"""How Kubernetes names a StatefulSet's pods in DNS."""

from __future__ import annotations

from dataclasses import dataclass

from clusterkit.core.slots import is_number


@dataclass(frozen=True)
class PodNaming:
    """The names CoreDNS gives a StatefulSet's pods behind a headless Service."""

    statefulset: str
    """StatefulSet name: pods are `<statefulset>-<ordinal>`."""
    service: str
    """Headless Service governing the StatefulSet."""
    namespace: str
    """Namespace of both."""
    cluster_domain: str = "cluster.local"
    """Cluster DNS domain."""

    def pod_name(self, ordinal: int) -> str:
        return f"{self.statefulset}-{ordinal}"

    @property
    def service_fqdn(self) -> str:
        return f"{self.service}.{self.namespace}.svc.{self.cluster_domain}"

    def pod_fqdn(self, ordinal: int) -> str:
        return f"{self.pod_name(ordinal)}.{self.service_fqdn}"

    def ordinal_of(self, pod_or_fqdn: str) -> int | None:
        """The ordinal of `redis-3` or `redis-3.<service fqdn>`, or None for other names."""
        name = pod_or_fqdn.rstrip(".")
        suffix = "." + self.service_fqdn
        if name.endswith(suffix):
            name = name[: -len(suffix)]
        prefix = self.statefulset + "-"
        digits = name[len(prefix) :] if name.startswith(prefix) else ""
        if not is_number(digits) or (digits != "0" and digits.startswith("0")):
            return None
        return int(digits)
