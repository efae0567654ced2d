"""`python -m sidecar status` as people read it: a row per pod in ordinal order, the replica's
lag from the two offsets, and the layout verdict naming the loss that would take the cluster
down (simulated cluster, no servers)."""

from __future__ import annotations

import json

from clusterkit.core.domains import Placement
from clusterkit.core.viewlayout import ordinals_in_view
from sidecar.statustable import PodReading, Status, build_status
from tests.unit.factories import NAMING, SimCluster, converge, shape_of

NODES = {0: "node-a", 1: "node-b", 2: "node-c", 3: "node-b", 4: "node-c", 5: "node-a"}


def readings(nodes: dict[int, str]) -> dict[str, PodReading]:
    found = {}
    for ordinal, node in nodes.items():
        replication = (
            {"master_repl_offset": "1500"}
            if ordinal < 3
            else {"master_link_status": "up", "slave_repl_offset": "1400"}
        )
        found[NAMING.pod_name(ordinal)] = PodReading(Placement(node), "ready", replication)
    return found


def status_of(nodes: dict[int, str], failover: int | None = None) -> Status:
    sim = SimCluster(6)
    converge(sim, shape_of(3, 1))
    if failover is not None:
        sim.failover(failover)
    lines = list(sim.states()[0].nodes)
    return build_status(lines, ordinals_in_view(lines, NAMING, {}), NAMING, readings(nodes))


def test_a_row_per_pod_in_ordinal_order_with_role_master_and_lag() -> None:
    status = status_of(NODES)
    assert [r.pod for r in status.rows] == [NAMING.pod_name(i) for i in range(6)]
    masters = [r for r in status.rows if r.role == "master"]
    assert sum(r.slots for r in masters) == 16384
    replicas = [r for r in status.rows if r.role == "replica"]
    assert {r.link for r in replicas} == {"up"}
    assert {r.lag for r in replicas} == {"100"}
    assert all(r.master for r in replicas)


def test_a_spread_layout_says_it_survives_and_needs_nobody() -> None:
    status = status_of(NODES)
    assert status.layout == "survives the loss of any one node: yes"
    table = status.as_table()
    assert "layout: survives the loss of any one node: yes" in table
    assert "needs a person: nothing" in table
    assert table.splitlines()[0].split()[:3] == ["POD", "NODE", "ZONE"]


def test_two_masters_on_one_node_name_that_node_as_fatal() -> None:
    status = status_of(NODES, failover=3)  # redis-3 leads on node-b, beside redis-1
    assert "no; losing node-b takes the cluster down" in status.layout


def test_json_holds_the_same_rows_and_verdict() -> None:
    status = status_of(NODES)
    data = json.loads(status.as_json())
    assert len(data["rows"]) == 6 and data["layout"] == status.layout
    assert data["rows"][0]["node"] == "node-a"


def test_a_pod_whose_sidecar_did_not_answer_leaves_the_layout_unknown() -> None:
    partial = {o: n for o, n in NODES.items() if o != 4}
    status = status_of(partial)
    assert status.layout.startswith("unknown")
    assert status.rows[4].ready == "no answer"
