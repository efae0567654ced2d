"""Replaced pods in the pure planner: old identities forgotten, new ones placed, lost shards."""

from __future__ import annotations

from dataclasses import replace

from clusterkit.core.ghosts import LostSlots, find_ghosts
from clusterkit.core.model import Forget, Meet, Replicate
from clusterkit.core.plan import Shape, make_plan
from clusterkit.core.reasons import Kind
from tests.unit.factories import (
    NAMING,
    assert_formed,
    converge,
    formed_cluster,
    node_id,
    node_line,
    shape_of,
    topology,
)

SHAPE = shape_of(3, 1)


def test_replaced_replica_is_forgotten_met_and_placed_back_in_one_round() -> None:
    sim = formed_cluster(3, 1)
    master_of_3 = sim.nodes[3].master_id
    old = sim.nodes[3].node_id
    sim.replace(3)
    plan = make_plan(SHAPE, sim.states())
    forgotten = {(a.ordinal, a.node_id) for a in plan.actions if isinstance(a, Forget)}
    assert forgotten == {(o, old) for o in (0, 1, 2, 4, 5)}
    assert any(isinstance(a, Meet) and a.ordinal == 3 for a in plan.actions)
    replicate = [a for a in plan.actions if isinstance(a, Replicate)]
    assert [(a.ordinal, a.master_id) for a in replicate] == [(3, master_of_3)]
    converge(sim, SHAPE)
    assert_formed(sim, 3, 1)
    assert sim.ghosts_listed() == set()


def test_master_replaced_after_failover_comes_back_as_replica_of_the_promoted_one() -> None:
    sim = formed_cluster(3, 1)
    sim.failover(3)
    sim.replace(0)
    converge(sim, SHAPE)
    assert_formed(sim, 3, 1)
    _slots, replica_of = topology(sim)
    assert replica_of[0] == 3
    assert sim.ghosts_listed() == set()


def test_master_with_live_replica_is_not_forgotten_and_its_replica_is_left_alone() -> None:
    sim = formed_cluster(3, 1)
    old = sim.nodes[0].node_id
    sim.replace(0)
    plan = make_plan(SHAPE, sim.states())
    assert plan.refusal is None
    assert not any(isinstance(a, Forget) for a in plan.actions)
    # redis-3 may be the only copy of the shard: nothing may point it elsewhere.
    assert not any(a.ordinal == 3 for a in plan.actions)
    # The new redis-0 waits too: its old identity still stands for the shard.
    assert not any(a.ordinal == 0 for a in plan.actions)
    assert any("promote" in str(reason) and old in str(reason) for reason in plan.waiting)
    sim.failover(3)
    converge(sim, SHAPE)
    assert_formed(sim, 3, 1)


def test_two_replicas_of_different_masters_replaced_at_once() -> None:
    sim = formed_cluster(3, 1)
    before = topology(sim)
    sim.replace(4)
    sim.replace(5)
    converge(sim, SHAPE)
    assert_formed(sim, 3, 1)
    assert topology(sim) == before
    assert sim.ghosts_listed() == set()


def test_lost_shard_refused_by_default_naming_slots_node_and_setting() -> None:
    sim = formed_cluster(3, 1)
    dead = sim.nodes[0].node_id
    sim.replace(0)
    sim.replace(3)
    plan = make_plan(SHAPE, sim.states())
    assert plan.refusal is not None
    assert "0-5460" in plan.refusal.sentence and dead in plan.refusal.sentence
    assert "REASSIGN_LOST_SLOTS=true" in plan.refusal.sentence
    assert plan.actions == ()
    assert [g.node_id for g in plan.lost] == [dead]


def test_lost_shard_kept_heals_the_rest_and_leaves_its_pod_alone() -> None:
    sim = formed_cluster(3, 1)
    dead = sim.nodes[0].node_id
    sim.replace(0)
    sim.replace(3)
    plan = make_plan(SHAPE, sim.states(), lost_slots=LostSlots.KEEP)
    assert plan.refusal is None
    assert [g.node_id for g in plan.lost] == [dead]
    assert all(a.node_id != dead for a in plan.actions if isinstance(a, Forget))
    assert not any(a.ordinal == 0 for a in plan.actions)
    assert not plan.slots.get(0)


def test_lost_shard_reassigned_restores_coverage() -> None:
    sim = formed_cluster(3, 1)
    sim.replace(0)
    sim.replace(3)
    converge(sim, SHAPE, lost_slots=LostSlots.REASSIGN)
    assert_formed(sim, 3, 1)
    assert sim.ghosts_listed() == set()


def test_reassign_refused_when_a_node_holds_keys_in_lost_slots() -> None:
    sim = formed_cluster(3, 1)
    sim.replace(0)
    sim.replace(3)
    states = [replace(s, slot_keys=dict.fromkeys(range(5461), 0)) for s in sim.states()]
    states[1] = replace(states[1], slot_keys={**states[1].slot_keys, 42: 3})
    plan = make_plan(SHAPE, states, lost_slots=LostSlots.REASSIGN)
    assert (
        plan.refusal is not None
        and "redis-1" in plan.refusal.sentence
        and "42" in plan.refusal.sentence
    )
    assert plan.actions == ()


def test_reassign_waits_for_key_counts() -> None:
    sim = formed_cluster(3, 1)
    sim.replace(0)
    sim.replace(3)
    plan = make_plan(SHAPE, sim.states(), lost_slots=LostSlots.REASSIGN)
    assert plan.refusal is None
    assert any("counting keys" in reason.sentence for reason in plan.waiting)
    assert not any(
        isinstance(a, Forget) and a.node_id == plan.lost[0].node_id for a in plan.actions
    )


def test_an_id_that_answers_is_no_ghost() -> None:
    """A pod that moved keeps its id: its stale line at the old address is not forgotten."""
    sim = formed_cluster(3, 1)
    sim.nodes[3].ip = "10.8.0.4"  # moved; peers still show the old address
    ghosts, foreign = find_ghosts(sim.states())
    assert ghosts == [] and foreign == []


def test_connected_old_identity_waits() -> None:
    sim = formed_cluster(3, 1)
    old = sim.nodes[4]
    sim.replace(4)
    old.dead = False  # some node still shows it connected: something answers there
    plan = make_plan(SHAPE, sim.states())
    assert not any(isinstance(a, Forget) for a in plan.actions)
    assert any("connected" in reason.sentence for reason in plan.waiting)


def test_node_of_no_pod_is_still_refused() -> None:
    sim = formed_cluster(3, 1)
    stranger = node_line(
        node_id("stranger"), address="10.7.0.1:6379@16379,other-0", flags="master,fail"
    )
    sim.nodes[1].extra_lines.append(stranger)
    plan = make_plan(SHAPE, sim.states())
    assert plan.refusal is not None and "no pod of this StatefulSet" in plan.refusal.sentence


def test_pod_map_names_an_old_identity_without_hostname() -> None:
    sim = formed_cluster(3, 1)
    lost = node_id("old-4")
    line = node_line(lost, address=":0@0", flags="slave,fail,noaddr", link="disconnected")
    sim.nodes[1].extra_lines.append(line)
    assert make_plan(SHAPE, sim.states()).refusal is not None
    plan = make_plan(SHAPE, sim.states(), pod_names={lost: "redis-4"})
    assert plan.refusal is None
    assert [(a.ordinal, a.node_id) for a in plan.actions if isinstance(a, Forget)] == [(1, lost)]


def test_replica_of_a_slotless_ghost_is_moved_before_it_forgets() -> None:
    """Redis refuses to forget its own master: the replica is pointed at a live master first."""
    sim = formed_cluster(3, 1)
    old = sim.nodes[0].node_id
    sim.replace(0)
    sim.nodes[1].slots |= sim.by_id[old].slots  # its slots went elsewhere; redis-3 still follows it
    sim.by_id[old].slots = set()
    plan = make_plan(Shape(6, 2), sim.states())
    forgetting = {a.ordinal for a in plan.actions if isinstance(a, Forget)}
    assert 3 not in forgetting and forgetting
    assert any(isinstance(a, Replicate) and a.ordinal == 3 for a in plan.actions)
    converge(sim, Shape(6, 2))
    assert_formed(sim, 2, 2)  # the uneven slots were balanced too
    assert sim.ghosts_listed() == set()


def test_old_identity_learnt_by_gossip_without_hostname_is_still_that_pods() -> None:
    """A node that met the cluster after the death knows the old id only from gossip: no
    hostname, no slots. One view naming the id is enough."""
    sim = formed_cluster(3, 1)
    old = sim.nodes[4].node_id
    sim.replace(4)
    gossip_only = node_line(
        old, address="10.1.0.5:6379@16379", flags="slave,fail", link="disconnected"
    )
    sim.nodes[0].extra_lines.append(gossip_only)
    ghosts, foreign = find_ghosts(sim.states())
    assert foreign == []
    assert [(g.node_id, g.pod) for g in ghosts] == [(old, 4)]


def test_lost_shard_left_only_in_a_gossip_view_is_forgotten_with_the_jobs_pod_map() -> None:
    """The views that named a dead master (hostname) forgot it; a node that learnt it through
    gossip just before still lists it, without hostname. The Job's pod map, kept from earlier
    rounds, names its pod: it is forgotten there too, not refused as a foreign node."""
    sim = formed_cluster(3, 1)
    dead = sim.nodes[0].node_id
    sim.replace(0)
    sim.replace(3)
    for node in sim.nodes:
        sim.forget(node, dead)
    gossip_only = node_line(
        dead,
        address="10.1.0.1:6379@16379",
        flags="master,fail",
        link="disconnected",
        slots="0-5460",
    )
    sim.nodes[2].extra_lines.append(gossip_only)
    assert "no pod of this StatefulSet" in str(make_plan(SHAPE, sim.states()).refusal)
    states = [replace(s, slot_keys=dict.fromkeys(range(5461), 0)) for s in sim.states()]
    plan = make_plan(SHAPE, states, pod_names={dead: "redis-0"}, lost_slots=LostSlots.REASSIGN)
    assert plan.refusal is None
    forgets = [a.ordinal for a in plan.actions if isinstance(a, Forget) and a.node_id == dead]
    assert forgets == [2]


def test_removed_pods_id_in_the_pod_map_is_a_removed_node_not_a_foreign_one() -> None:
    sim = formed_cluster(3, 1)
    gone = node_id("removed-7")
    line = node_line(gone, address="10.1.0.8:6379@16379", flags="slave,fail", link="disconnected")
    sim.nodes[1].extra_lines.append(line)
    assert make_plan(SHAPE, sim.states(), naming=NAMING).refusal is not None
    ghosts, foreign = find_ghosts(sim.states(), {gone: "redis-7"}, NAMING)
    assert foreign == []
    assert [(g.node_id, g.pod, g.removed) for g in ghosts] == [(gone, 7, True)]


def test_a_replaced_replica_rejoins_while_a_slot_is_open_and_the_slot_is_closed_too() -> None:
    sim = formed_cluster(3, 1)
    master_of_3 = sim.nodes[3].master_id
    old = sim.nodes[3].node_id
    sim.replace(3)
    states = sim.states()
    slot = min(sim.nodes[0].slots)
    target = sim.nodes[1].node_id

    def opened(ordinal: int, text: str) -> None:
        pod = states[ordinal]
        lines = tuple(replace(n, migrations=(text,)) if n.is_myself else n for n in pod.nodes)
        states[ordinal] = replace(pod, nodes=lines)

    opened(0, f"[{slot}->-{target}]")
    opened(1, f"[{slot}-<-{sim.nodes[0].node_id}]")
    states = [replace(p, slot_keys={slot: 0}) for p in states]
    plan = make_plan(SHAPE, states)
    assert plan.refusal is None
    kinds = {type(a).__name__ for a in plan.actions}
    assert {"Forget", "Meet", "Replicate"} <= kinds
    assert kinds & {"CloseSlot", "MoveSlot", "SetSlotNode"}  # the open slot is closed too
    forgotten = {a.node_id for a in plan.actions if isinstance(a, Forget)}
    assert forgotten == {old}
    replicate = [(a.ordinal, a.master_id) for a in plan.actions if isinstance(a, Replicate)]
    assert replicate == [(3, master_of_3)]


def test_a_wait_names_the_old_identity_it_is_about() -> None:
    """The sidecar of a replaced pod shows only the waits about its own old identities: it
    picks them by node id, not by words in the sentence."""
    sim = formed_cluster(3, 1)
    old = sim.nodes[4]
    sim.replace(4)
    old.dead = False
    (wait,) = make_plan(SHAPE, sim.states()).waiting
    assert wait.kind is Kind.GHOST_CONNECTED
    assert wait.nodes == (old.node_id,) and wait.pods == ("redis-4",)
    assert wait.concerns({old.node_id}) and not wait.concerns({sim.nodes[4].node_id})


def test_a_refusal_says_its_kind_and_the_pods() -> None:
    sim = formed_cluster(3, 1)
    dead = sim.nodes[0].node_id
    sim.replace(0)  # a master's pod came back empty, and so did its one replica's
    sim.replace(3)
    refusal = make_plan(SHAPE, sim.states()).refusal
    assert refusal is not None and refusal.kind is Kind.LOST_SHARD
    assert (refusal.nodes, refusal.pods) == ((dead,), ("redis-0",))
