"""Which open-slot states a stopping master gives the replica that takes over
(clusterkit.core.handoff)."""

from __future__ import annotations

from clusterkit.core.handoff import Reopen, reopen_after_failover
from clusterkit.core.nodes import parse_cluster_nodes
from tests.unit.factories import node_id, node_line

OLD, NEW, PEER = node_id("old"), node_id("new"), node_id("peer")


def view(open_slots: str) -> str:
    """The old master's CLUSTER NODES: itself with `open_slots`, its replica, another master."""
    return "\n".join(
        [
            node_line(
                OLD, "10.0.0.1:6379@16379", "myself,master", slots=f"0-99 {open_slots}".strip()
            ),
            node_line(NEW, "10.0.0.2:6379@16379", "slave", master=OLD),
            node_line(PEER, "10.0.0.3:6379@16379", "master", slots="100-16383"),
        ]
    )


def test_a_slot_being_migrated_stays_migrating_to_the_same_target_on_the_new_master() -> None:
    nodes = parse_cluster_nodes(view(f"[7->-{PEER}]"))
    assert reopen_after_failover(nodes, NEW) == [Reopen(NEW, 7, "MIGRATING", PEER)]


def test_a_slot_being_imported_is_imported_by_the_new_master_and_its_source_points_there() -> None:
    nodes = parse_cluster_nodes(view(f"[200-<-{PEER}]"))
    assert reopen_after_failover(nodes, NEW) == [
        Reopen(NEW, 200, "IMPORTING", PEER),
        Reopen(PEER, 200, "MIGRATING", NEW),
    ]


def test_no_open_slot_or_a_peer_nobody_knows_gives_nothing_to_carry() -> None:
    assert reopen_after_failover(parse_cluster_nodes(view("")), NEW) == []
    stranger = node_id("stranger")
    assert reopen_after_failover(parse_cluster_nodes(view(f"[7->-{stranger}]")), NEW) == []
