"""The examples/ overlays, rendered by kubectl as `kubectl apply -k` would: the settings name the
objects the overlay renamed, every selector carries the instance (the StatefulSet's name), and a
second instance in the same namespace shares no object name, selector or Secret with the first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devcluster.cluster import DevCluster
from devcluster.health import wait_healthy
from sidecar.settings import parse_sidecar_settings
from tests.integration.helpers import missing_keys, write_keys
from tests.integration.kustomize import ROOT, by_kind, render, settings_env

pytestmark = pytest.mark.integration

INSTANCE = "app.kubernetes.io/instance"
EXAMPLES = ROOT / "examples"

Objects = list[dict[str, Any]]


@pytest.fixture(scope="module")
def rendered() -> dict[str, Objects]:
    return {
        "base": render(),
        "prefix-namespace": render(EXAMPLES / "prefix-namespace"),
        "second-instance": render(EXAMPLES / "second-instance"),
    }


def selectors(objects: Objects) -> list[tuple[str, dict[str, str]]]:
    """Every label selector of the rendered objects: (where, matchLabels)."""
    found: list[tuple[str, dict[str, str]]] = []
    for o in objects:
        where, spec = f"{o['kind']}/{o['metadata']['name']}", o.get("spec", {})
        if o["kind"] == "Service":
            found.append((where, spec["selector"]))
        elif o["kind"] in ("StatefulSet", "PodDisruptionBudget"):
            found.append((where, spec["selector"]["matchLabels"]))
        if o["kind"] == "StatefulSet":
            for constraint in spec["template"]["spec"]["topologySpreadConstraints"]:
                found.append((f"{where} spread", constraint["labelSelector"]["matchLabels"]))
        if o["kind"] == "NetworkPolicy":
            found.append((where, spec["podSelector"]["matchLabels"]))
            for rule in spec.get("ingress", []) + spec.get("egress", []):
                for peer in rule.get("from", []) + rule.get("to", []):
                    labels = peer.get("podSelector", {}).get("matchLabels", {})
                    if labels.get("app.kubernetes.io/name") == "redis-cluster":
                        found.append((f"{where} peer", labels))
    return found


def pod_labels(objects: Objects) -> list[dict[str, str]]:
    sts = by_kind(objects, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    job = by_kind(objects, "Job")["spec"]["template"]["metadata"]["labels"]
    return [sts, job]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("name", ["base", "prefix-namespace", "second-instance"])
def test_the_settings_name_the_renamed_objects(rendered: dict[str, Objects], name: str) -> None:
    objects = rendered[name]
    sts = by_kind(objects, "StatefulSet")
    sidecar = sts["spec"]["template"]["spec"]["initContainers"][0]
    env = settings_env(objects, sidecar)
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    assert env["STATEFULSET_NAME"] == sts["metadata"]["name"]
    assert env["HEADLESS_SERVICE"] == sts["spec"]["serviceName"]
    assert services[env["HEADLESS_SERVICE"]]["spec"]["clusterIP"] == "None"
    side = parse_sidecar_settings([], {**env, "POD_NAME": f"{sts['metadata']['name']}-4"})
    namespace = sts["metadata"].get("namespace", "default")
    expected = f"{sts['metadata']['name']}-4.{env['HEADLESS_SERVICE']}.prod.svc.cluster.local"
    assert side.pod_fqdn == expected  # settings_env's Downward API namespace is `prod`
    assert namespace == ("cache" if name == "prefix-namespace" else "default")


@pytest.mark.parametrize("name", ["base", "prefix-namespace", "second-instance"])
def test_every_selector_carries_the_instance_and_selects_its_pods(
    rendered: dict[str, Objects], name: str
) -> None:
    objects = rendered[name]
    instance = by_kind(objects, "StatefulSet")["metadata"]["name"]
    for where, selector in selectors(objects):
        assert selector.get(INSTANCE) == instance, where
        assert any(matches(selector, labels) for labels in pod_labels(objects)), where
    for o in objects:
        assert o["metadata"]["labels"][INSTANCE] == instance, o["kind"]
    claims = by_kind(objects, "StatefulSet")["spec"]["volumeClaimTemplates"]
    assert all(c["metadata"]["labels"][INSTANCE] == instance for c in claims)


def test_the_prefix_and_namespace_reach_every_object(rendered: dict[str, Objects]) -> None:
    for o in rendered["prefix-namespace"]:
        assert o["metadata"]["name"].startswith("cache-"), o["kind"]
        if o["kind"] != "Namespace":
            assert o["metadata"]["namespace"] == "cache", o["kind"]


def test_two_instances_in_one_namespace_share_nothing(rendered: dict[str, Objects]) -> None:
    first, second = rendered["base"], rendered["second-instance"]
    names = {(o["kind"], o["metadata"]["name"]) for o in first}
    assert not names & {(o["kind"], o["metadata"]["name"]) for o in second}
    for mine, theirs in ((first, second), (second, first)):
        for where, selector in selectors(mine):
            for labels in pod_labels(theirs):
                assert not matches(selector, labels), f"{where} selects the other's pods"
    assert secret_names(first).isdisjoint(secret_names(second))


def secret_names(objects: Objects) -> set[str]:
    names = set()
    for o in objects:
        spec = o.get("spec", {})
        if o["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        for volume in spec.get("template", {}).get("spec", {}).get("volumes", []):
            if "secret" in volume:
                names.add(volume["secret"]["secretName"])
    return names


def test_devcluster_runs_the_prefix_namespace_overlay_as_rendered(tmp_path: Path) -> None:
    """What the overlay says is what runs: pods named cache-redis-N announce FQDNs in the
    `cache` namespace under cache-redis-headless, the Job forms them, and after every pod
    restarts at a new address the sidecars heal them (they find peers by those names)."""
    cluster = DevCluster(tmp_path / "overlay")
    try:
        cluster.up(6, 1, kustomize_dir=EXAMPLES / "prefix-namespace")
        assert cluster.run_job().returncode == 0
        write_keys(cluster, 500)
        pods = [p.name for p in cluster.require().pods]
        assert pods == [f"cache-redis-{i}" for i in range(6)]
        fqdn = "cache-redis-0.cache-redis-headless.cache.svc.cluster.local"
        nodes = str(cluster.client("cache-redis-1").execute_command("CLUSTER", "NODES"))
        assert fqdn in nodes
        cluster.restart(pods)
        assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=60) == []
        assert missing_keys(cluster, {f"key:{i}": str(i) for i in range(500)}) == []
    finally:
        cluster.down()
