"""The monitoring component: its alerts tested with promtool (each fires on a series that should
fire it and not on a healthy one: tests/monitoring/alerts.test.yaml), every alert covered, and
every query of the rules and the Grafana dashboard asks only for series the sidecar exports
(or kube-state-metrics', named)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Metric

from sidecar.metrics import Metrics
from tests.integration.kustomize import ROOT, by_kind, render

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "examples" / "monitoring"
RULE_TESTS = ROOT / "tests" / "monitoring" / "alerts.test.yaml"
KUBE_STATE_METRICS = {"kube_statefulset_replicas"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "sum", "min", "max", "avg", "count", "rate", "increase", "vector",
}  # fmt: skip


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render(EXAMPLE)


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is not installed: apt-get install prometheus (.ci/run does)")
    return found


def exported() -> set[str]:
    """Every series name the sidecar's registry exports (counters with _total)."""
    names: set[str] = set()
    metric: Metric
    for metric in Metrics().registry.collect():
        names.add(metric.name)
        if metric.type == "counter":
            names.add(metric.name + "_total")
    return names


def series_names(expr: str) -> set[str]:
    """Names of the series a PromQL expression reads (label matchers, grouping clauses,
    durations, strings and Grafana variables taken out first)."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\$\w+", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", text)
    words = set(re.findall(r"(?<![\w.])[a-zA-Z_:][\w:]*\b(?!\s*\()", text))
    return words - PROMQL_WORDS


def rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = by_kind(objects, "PrometheusRule")["spec"]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_every_alert_fires_when_it_should_and_not_on_a_healthy_series(
    objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    groups = by_kind(objects, "PrometheusRule")["spec"]["groups"]
    full = tmp_path / "full.yaml"
    full.write_text(yaml.safe_dump({"groups": groups}))
    checked = subprocess.run(
        [promtool(), "check", "rules", str(full)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    bare = [
        {**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]}
        for g in groups
    ]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": bare}))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = subprocess.run(
        [promtool(), "test", "rules", str(tmp_path / RULE_TESTS.name)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_case_and_a_healthy_series(
    objects: list[dict[str, Any]],
) -> None:
    cases = [
        case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]  # fmt: skip
    fired = {c["alertname"] for c in cases if c.get("exp_alerts")}
    alerts = {r["alert"] for r in rules(objects)}
    assert alerts == fired
    assert len(alerts) == 14


def test_the_rules_read_only_series_the_sidecar_exports(objects: list[dict[str, Any]]) -> None:
    names = exported()
    for rule in rules(objects):
        unknown = series_names(rule["expr"]) - names - KUBE_STATE_METRICS
        assert not unknown, f"{rule['alert']} reads {unknown}"


def test_the_dashboard_reads_only_series_the_sidecar_exports(
    objects: list[dict[str, Any]],
) -> None:
    names = exported()
    dashboard = next(
        o
        for o in objects
        if o["kind"] == "ConfigMap" and "redis-cluster-dashboard" in o["metadata"]["name"]
    )
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(next(iter(dashboard["data"].values())))
    queries = [t["expr"] for p in board["panels"] for t in p["targets"]]
    # Grafana's label_values(series, label): the series is read, the label is not a series.
    variables = [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    queries += [re.sub(r"label_values\((.*),\s*\w+\)", r"\1", q) for q in variables]
    assert len(queries) > 15
    for query in queries:
        unknown = series_names(query) - names
        assert not unknown, f"the dashboard reads {unknown} in {query}"


def test_the_podmonitor_scrapes_the_sidecars_named_port_of_this_instance(
    objects: list[dict[str, Any]],
) -> None:
    monitor = by_kind(objects, "PodMonitor")["spec"]
    sts = by_kind(objects, "StatefulSet")
    pod = sts["spec"]["template"]
    sidecar = pod["spec"]["initContainers"][0]
    ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    endpoint = monitor["podMetricsEndpoints"][0]
    assert endpoint["path"] == "/metrics" and endpoint["port"] in ports
    assert ports[endpoint["port"]] != 9121  # redis_exporter's port: users run both
    labels = pod["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in monitor["selector"]["matchLabels"].items())
    assert (
        monitor["selector"]["matchLabels"]["app.kubernetes.io/instance"] == sts["metadata"]["name"]
    )
    assert not [n for n in exported() if n.startswith("redis_")]  # redis_exporter's names
