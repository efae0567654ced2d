"""Observe every node in one round: its cluster view, CLUSTER INFO, key count, replication;
and, for the slots that need a decision, how many keys each node holds in them. The Job and
the sidecars plan on the same ClusterView (observe_cluster, or cluster_view for pods observed
already)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

import redis
import structlog

from clusterkit.core.ghosts import LostSlots, find_ghosts, lost_slot_set
from clusterkit.core.identity import pod_map_from
from clusterkit.core.model import PodState
from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import NodeLineError, parse_cluster_nodes
from clusterkit.core.openslots import open_slots
from clusterkit.io.redisio import Command, Reply, info_fields, scatter

log = structlog.get_logger()

OBSERVE: tuple[Command, ...] = (
    ("CLUSTER", "NODES"),
    ("CLUSTER", "INFO"),
    ("DBSIZE",),
    ("INFO", "replication"),
)


def pod_state(
    ordinal: int, ip: str, port: int, naming: PodNaming, replies: list[Reply]
) -> PodState:
    """A PodState from the replies to OBSERVE; raises on error replies or bad node lines."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    nodes_text, info_text, keys, replication = replies
    link = info_fields(replication).get("master_link_status")
    state = PodState(
        ordinal=ordinal,
        pod=naming.pod_name(ordinal),
        fqdn=naming.pod_fqdn(ordinal),
        ip=ip,
        port=port,
        nodes=tuple(parse_cluster_nodes(str(nodes_text))),
        info=info_fields(info_text),
        keys=int(str(keys)),
        master_link_up=None if link is None else link == "up",
    )
    # A pod restarted elsewhere may leave its old address to another pod: the hostname its
    # Redis announces says whose node answered there.
    announced = state.me.address.hostname
    if announced and naming.ordinal_of(announced) not in (None, ordinal):
        raise ValueError(f"{ip} is {announced} now, not {state.fqdn}")
    return state


def observe_all(
    addresses: dict[int, str],
    port: int,
    clients: dict[int, redis.Redis],
    naming: PodNaming,
    optional: Collection[int] = (),
) -> list[PodState] | None:
    """Every pod's state, or None when some pod could not be observed this round; a pod in
    `optional` that could not be is left out instead."""
    states = observe_each(addresses, port, clients, naming)
    observed = {s.ordinal for s in states}
    return states if all(o in observed or o in optional for o in addresses) else None


def observe_each(
    addresses: dict[int, str],
    port: int,
    clients: dict[int, redis.Redis],
    naming: PodNaming,
) -> list[PodState]:
    """The state of every pod that could be observed this round (the others are logged)."""
    ordinals = sorted(addresses)
    results = scatter([(clients[o], OBSERVE) for o in ordinals])
    states: list[PodState] = []
    for ordinal, result in zip(ordinals, results, strict=True):
        try:
            if isinstance(result, Exception):
                raise result
            states.append(pod_state(ordinal, addresses[ordinal], port, naming, result))
        except (redis.RedisError, OSError, NodeLineError, ValueError) as exc:
            log.warning(
                "observe_failed",
                pod=naming.pod_name(ordinal),
                ip=addresses[ordinal],
                error=str(exc),
            )
    return states


def count_slot_keys(
    pods: Sequence[PodState],
    slots: Collection[int],
    clients: dict[int, redis.Redis],
    naming: PodNaming,
) -> list[PodState] | None:
    """`pods` with `slot_keys` counted for `slots` (CLUSTER COUNTKEYSINSLOT, one pipeline per
    pod, all pods at once), or None when some pod could not be counted this round."""
    ordered = sorted(slots)
    commands = [("CLUSTER", "COUNTKEYSINSLOT", slot) for slot in ordered]
    results = scatter([(clients[p.ordinal], commands) for p in pods])
    counted: list[PodState] = []
    for pod, result in zip(pods, results, strict=True):
        try:
            if isinstance(result, Exception):
                raise result
            for reply in result:
                if isinstance(reply, Exception):
                    raise reply
            counts = {slot: int(str(n)) for slot, n in zip(ordered, result, strict=True)}
        except (redis.RedisError, OSError, ValueError) as exc:
            log.warning("count_keys_failed", pod=naming.pod_name(pod.ordinal), error=str(exc))
            return None
        counted.append(replace(pod, slot_keys={**pod.slot_keys, **counts}))
    return counted


@dataclass(frozen=True)
class ClusterView:
    """One round's observation of the whole cluster: everything the planner is given."""

    pods: tuple[PodState, ...]
    """Every pod observed, with the keys counted in each slot the plan decides by who holds
    keys: the open slots and, when lost shards are reassigned, theirs."""
    pod_map: Mapping[str, str]
    """Node id -> pod name: the map handed in, and every pod the views announce by hostname."""
    hosts: Mapping[int, str]
    """Ordinal -> failure domain (zone, else Kubernetes node), as the sidecars report it;
    empty when not known (the planner then spreads by nothing)."""
    open_slots: frozenset[int]
    """Slots some node has MIGRATING or IMPORTING."""


def cluster_view(
    pods: Sequence[PodState],
    clients: dict[int, redis.Redis],
    naming: PodNaming,
    *,
    lost_slots: LostSlots = LostSlots.KEEP,
    pod_map: Mapping[str, str] | None = None,
    hosts: Mapping[int, str] | None = None,
) -> ClusterView | None:
    """The view of pods observed already, with the keys counted in every slot the plan decides
    by who holds keys: the open slots and, when lost shards are reassigned, theirs. None when
    some pod could not be counted this round."""
    known = dict(pod_map or {})
    for pod in pods:
        known.update(pod_map_from(pod.nodes, naming))
    opened = open_slots(pods)
    decided = set(opened)
    if lost_slots is LostSlots.REASSIGN:
        decided |= lost_slot_set(find_ghosts(pods, known, naming)[0])
    counted = count_slot_keys(pods, decided, clients, naming) if decided else list(pods)
    if counted is None:
        return None
    return ClusterView(tuple(counted), known, dict(hosts or {}), frozenset(opened))


def observe_cluster(
    addresses: dict[int, str],
    port: int,
    clients: dict[int, redis.Redis],
    naming: PodNaming,
    *,
    lost_slots: LostSlots = LostSlots.KEEP,
    pod_map: Mapping[str, str] | None = None,
    hosts: Mapping[int, str] | None = None,
) -> ClusterView | None:
    """Every pod's state and the keys the plan needs counted; None when some pod could not be
    observed or counted this round."""
    pods = observe_all(addresses, port, clients, naming)
    if pods is None:
        return None
    return cluster_view(pods, clients, naming, lost_slots=lost_slots, pod_map=pod_map, hosts=hosts)
