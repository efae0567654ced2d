"""The rendered NetworkPolicies allow exactly the flows docs/security.md lists: evaluated with
Kubernetes' rules (a pod selected by a policy of a type is isolated for it; a connection needs
the source's egress and the destination's ingress to allow it) over pods that should and should
not get through."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.integration.kustomize import render

pytestmark = pytest.mark.integration

NAMESPACE = "cache"
"""Where the base is deployed in this model."""

Labels = dict[str, str]


@dataclass(frozen=True)
class Pod:
    name: str
    labels: Labels
    namespace: str = NAMESPACE
    namespace_labels: Labels = field(default_factory=dict)

    def ns_labels(self) -> Labels:
        return {"kubernetes.io/metadata.name": self.namespace, **self.namespace_labels}


def matches(selector: dict[str, Any] | None, labels: Labels) -> bool:
    wanted = (selector or {}).get("matchLabels", {})
    assert not (selector or {}).get("matchExpressions"), "the model reads matchLabels only"
    return all(labels.get(k) == v for k, v in wanted.items())


def peer_matches(peer: dict[str, Any], pod: Pod) -> bool:
    if "ipBlock" in peer:
        return False  # the policies name no address ranges; nothing here is matched by one
    if "namespaceSelector" in peer:
        in_namespace = matches(peer["namespaceSelector"], pod.ns_labels())
    else:
        in_namespace = pod.namespace == NAMESPACE
    return in_namespace and matches(peer.get("podSelector"), pod.labels)


def port_matches(rule: dict[str, Any], port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    return any(p["port"] == port and p.get("protocol", "TCP") == protocol for p in ports)


def allows(
    policies: list[dict[str, Any]], kind: str, pod: Pod, other: Pod, *, port: int, protocol: str
) -> bool:
    """Whether `pod`'s policies of `kind` (Ingress/Egress) let it talk with `other`."""
    selecting = [
        p
        for p in policies
        if pod.namespace == NAMESPACE
        and matches(p["spec"]["podSelector"], pod.labels)
        and kind in p["spec"]["policyTypes"]
    ]
    if not selecting:
        return True  # not isolated
    key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    for policy in selecting:
        for rule in policy["spec"].get(key, []):
            peers = rule.get(peers_key)
            peer_ok = not peers or any(peer_matches(peer, other) for peer in peers)
            if peer_ok and port_matches(rule, port, protocol):
                return True
    return False


def flow(
    policies: list[dict[str, Any]], source: Pod, target: Pod, port: int, protocol: str = "TCP"
) -> bool:
    egress = allows(policies, "Egress", source, target, port=port, protocol=protocol)
    return egress and allows(policies, "Ingress", target, source, port=port, protocol=protocol)


CLUSTER = {"app.kubernetes.io/name": "redis-cluster", "app.kubernetes.io/instance": "redis"}
OTHER_INSTANCE = {**CLUSTER, "app.kubernetes.io/instance": "sessions-redis"}
REDIS = Pod("redis-1", {**CLUSTER, "app.kubernetes.io/component": "redis"})
PEER = Pod("redis-2", {**CLUSTER, "app.kubernetes.io/component": "redis"})
JOB = Pod("bootstrap", {**CLUSTER, "app.kubernetes.io/component": "bootstrap"})
CLIENT = Pod("app", {"redis-cluster-client": "true"})
REMOTE_CLIENT = Pod(
    "remote-app", {"redis-cluster-client": "true"}, "shop", {"redis-cluster-client": "true"}
)
UNLABELLED = Pod("stranger", {})
CLIENT_IN_OTHER_NS = Pod("other-app", {"redis-cluster-client": "true"}, "elsewhere")
PROMETHEUS = Pod(
    "prometheus", {"app": "prometheus"}, "monitoring", {"redis-cluster-metrics": "true"}
)
OTHER_REDIS = Pod("sessions-redis-0", {**OTHER_INSTANCE, "app.kubernetes.io/component": "redis"})
OTHER_JOB = Pod(
    "sessions-bootstrap", {**OTHER_INSTANCE, "app.kubernetes.io/component": "bootstrap"}
)
DNS = Pod("coredns", {"k8s-app": "kube-dns"}, "kube-system")
WEB = Pod("web", {"app": "web"}, "internet-facing")

ALLOWED = [
    (CLIENT, REDIS, 6379, "TCP"),
    (REMOTE_CLIENT, REDIS, 6379, "TCP"),
    (PEER, REDIS, 6379, "TCP"),
    (PEER, REDIS, 16379, "TCP"),
    (PEER, REDIS, 9380, "TCP"),
    (JOB, REDIS, 6379, "TCP"),
    (JOB, REDIS, 9380, "TCP"),
    (PROMETHEUS, REDIS, 9380, "TCP"),
    (REDIS, DNS, 53, "UDP"),
    (REDIS, DNS, 53, "TCP"),
    (JOB, DNS, 53, "UDP"),
    (JOB, DNS, 53, "TCP"),
]
DENIED = [
    (UNLABELLED, REDIS, 6379, "TCP"),
    (CLIENT_IN_OTHER_NS, REDIS, 6379, "TCP"),
    (CLIENT, REDIS, 16379, "TCP"),
    (CLIENT, REDIS, 9380, "TCP"),
    (REMOTE_CLIENT, REDIS, 16379, "TCP"),
    (JOB, REDIS, 16379, "TCP"),
    (PROMETHEUS, REDIS, 6379, "TCP"),
    (PROMETHEUS, REDIS, 16379, "TCP"),
    (REDIS, WEB, 443, "TCP"),
    (REDIS, CLIENT, 6379, "TCP"),
    (REDIS, DNS, 443, "TCP"),
    (JOB, WEB, 443, "TCP"),
    (JOB, REDIS, 22, "TCP"),
    (REDIS, JOB, 8080, "TCP"),
    (CLIENT, JOB, 8080, "TCP"),
    # Another cluster of the same product in the namespace is a stranger to this one.
    (OTHER_REDIS, REDIS, 16379, "TCP"),
    (OTHER_REDIS, REDIS, 6379, "TCP"),
    (OTHER_JOB, REDIS, 6379, "TCP"),
    (OTHER_JOB, REDIS, 9380, "TCP"),
    (REDIS, OTHER_REDIS, 16379, "TCP"),
]


@pytest.fixture(scope="module")
def policies() -> list[dict[str, Any]]:
    return [o for o in render() if o["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize(("source", "target", "port", "protocol"), ALLOWED)
def test_listed_flows_are_allowed(
    policies: list[dict[str, Any]], source: Pod, target: Pod, port: int, protocol: str
) -> None:
    assert flow(policies, source, target, port, protocol)


@pytest.mark.parametrize(("source", "target", "port", "protocol"), DENIED)
def test_other_flows_are_denied(
    policies: list[dict[str, Any]], source: Pod, target: Pod, port: int, protocol: str
) -> None:
    assert not flow(policies, source, target, port, protocol)


def test_every_pod_of_the_product_is_isolated_both_ways(policies: list[dict[str, Any]]) -> None:
    for pod in (REDIS, JOB):
        kinds = {
            kind
            for p in policies
            if matches(p["spec"]["podSelector"], pod.labels)
            for kind in p["spec"]["policyTypes"]
        }
        assert kinds == {"Ingress", "Egress"}, pod.name
