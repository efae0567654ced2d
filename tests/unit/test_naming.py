"""clusterkit.core.naming.PodNaming: the DNS names of a StatefulSet's pods."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusterkit.core.naming import PodNaming

NAMING = PodNaming("redis", "redis-headless", "shop")
LABEL = st.from_regex(r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


def test_names() -> None:
    assert NAMING.pod_name(3) == "redis-3"
    assert NAMING.service_fqdn == "redis-headless.shop.svc.cluster.local"
    assert NAMING.pod_fqdn(0) == "redis-0.redis-headless.shop.svc.cluster.local"
    custom = PodNaming("cache", "cache", "prod", "k8s.example.org")
    assert custom.pod_fqdn(12) == "cache-12.cache.prod.svc.k8s.example.org"


@pytest.mark.parametrize(
    ("name", "ordinal"),
    [
        ("redis-0", 0),
        ("redis-3", 3),
        ("redis-120", 120),
        ("redis-3.redis-headless.shop.svc.cluster.local", 3),
        ("redis-3.redis-headless.shop.svc.cluster.local.", 3),
        ("redis-3.", 3),
        ("redis-03", None),
        ("redis-00", None),
        ("redis-", None),
        ("redis", None),
        ("redis--1", None),
        ("redis-3a", None),
        ("redis-+3", None),
        ("redis- 3", None),
        ("redis-cluster-3", None),
        ("myredis-3", None),
        ("REDIS-3", None),
        ("redis-3.other.shop.svc.cluster.local", None),
        ("redis-3.redis-headless.other.svc.cluster.local", None),
        ("redis-3.redis-headless.shop.svc.cluster.local.evil", None),
        ("", None),
    ],
)
def test_ordinal_of(name: str, ordinal: int | None) -> None:
    assert NAMING.ordinal_of(name) == ordinal


def test_ordinal_of_with_a_hyphenated_statefulset() -> None:
    naming = PodNaming("redis-cluster", "redis", "default")
    assert naming.ordinal_of("redis-cluster-7") == 7
    assert naming.ordinal_of("redis-cluster-7.redis.default.svc.cluster.local") == 7
    assert naming.ordinal_of("redis-7") is None


@given(LABEL, LABEL, LABEL, st.integers(0, 10_000))
def test_ordinal_of_inverts_pod_name_and_fqdn(sts: str, svc: str, ns: str, ordinal: int) -> None:
    naming = PodNaming(sts, svc, ns)
    assert naming.ordinal_of(naming.pod_name(ordinal)) == ordinal
    assert naming.ordinal_of(naming.pod_fqdn(ordinal)) == ordinal
    assert naming.ordinal_of(naming.pod_fqdn(ordinal) + ".") == ordinal


@given(LABEL, LABEL, st.integers(0, 10_000))
def test_another_statefulsets_pods_are_not_ours(sts: str, other: str, ordinal: int) -> None:
    naming = PodNaming(sts, "svc", "ns")
    theirs = PodNaming(f"{sts}-{other}", "svc", "ns")
    assert naming.ordinal_of(theirs.pod_name(ordinal)) is None
    assert naming.ordinal_of(theirs.pod_fqdn(ordinal)) is None


def test_ordinal_of_a_superscript_digit_is_none() -> None:
    assert NAMING.ordinal_of("redis-²") is None
