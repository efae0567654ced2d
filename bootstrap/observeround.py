"""One round of the Job's observation: every pod, leaving ones too, with the slot keys the
plan needs counted."""

from __future__ import annotations

import redis

from bootstrap.leaving import LeavingPods
from bootstrap.podclients import PodClients
from bootstrap.settings import Settings
from clusterkit.core.ghosts import LostSlots
from clusterkit.core.identity import pod_map_from
from clusterkit.core.openslots import open_slots
from clusterkit.io.observe import ClusterView, cluster_view, observe_each


def observe_round(
    settings: Settings,
    addresses: dict[int, str],
    clients: dict[int, redis.Redis],
    lost_slots: LostSlots,
    leaving: LeavingPods | None = None,
    *,
    pod_map: dict[str, str] | None = None,
    staying: PodClients | None = None,
    hosts: dict[int, str] | None = None,
) -> tuple[ClusterView | None, set[int]]:
    """The cluster's view (None: some pod was not observed or counted) and the open slots.
    The plan decides open and lost slots by who holds their keys: those are counted too.
    Leaving pods (beyond CLUSTER_SIZE) are observed as well; one that no longer resolves is left
    out. `pod_map` gains every node id -> pod that the views announce. A pod of `staying` that
    was not observed is looked up again: the next round follows it to its new address."""
    naming = settings.cluster.naming
    gone = leaving.addresses if leaving else {}
    pods = observe_each({**addresses, **gone}, settings.cluster.redis_port, clients, naming)
    missing = sorted(addresses.keys() - {p.ordinal for p in pods})
    if missing:
        if staying:
            for ordinal in missing:
                staying.follow(ordinal)
        return None, set()
    if leaving:
        unobserved = sorted(gone.keys() - {p.ordinal for p in pods})
        if unobserved and not leaving.drop_removed(unobserved):
            return None, set()
        leaving.track(pods)
    if pod_map is not None:
        for pod in pods:
            pod_map.update(pod_map_from(pod.nodes, naming))
    fixing = open_slots(pods)
    view = cluster_view(pods, clients, naming, lost_slots=lost_slots, pod_map=pod_map, hosts=hosts)
    return view, fixing
