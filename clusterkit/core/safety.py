"""When the planner refuses, changing nothing: the observations show something no step may
touch (a foreign node, data outside the cluster, two clusters, a copied volume)."""

from __future__ import annotations

from collections.abc import Sequence

from clusterkit.core.model import PodState
from clusterkit.core.nodes import NodeLine
from clusterkit.core.reasons import Kind, Reason, about_pods


def check_safety(size: int, pods: Sequence[PodState]) -> Reason | None:
    """Why to refuse, changing nothing: foreign nodes, data outside the cluster, two clusters."""
    staying = sum(p.ordinal < size for p in pods)
    if staying != size:
        return Reason(Kind.PODS_MISSING, f"observed {staying} pods but CLUSTER_SIZE is {size}")
    pods = sorted(pods, key=lambda p: p.ordinal)  # the same message whatever the input order
    by_id: dict[str, PodState] = {}
    for pod in pods:
        if pod.node_id in by_id:
            other = by_id[pod.node_id]
            return Reason(
                Kind.SAME_NODE_ID,
                f"pods {other.pod} and {pod.pod} have the same Redis node id {pod.node_id}:"
                " one data volume was copied from the other; give one of them an empty volume",
                nodes=(pod.node_id,),
                pods=(other.pod, pod.pod),
            )
        by_id[pod.node_id] = pod
    for pod in pods:
        me = pod.me
        # (A master importing a slot holds keys of a move in progress: the open slot is closed.)
        if pod.keys and not me.slots and not me.is_replica and not me.migrations:
            return about_pods(
                Kind.DATA_OUTSIDE,
                f"pod {pod.pod} holds {pod.keys} keys but owns no slots and replicates nobody:"
                " that data is outside the cluster and joining would discard it. Export or"
                " delete those keys yourself (e.g. redis-cli --rdb), then rerun the Job",
                [pod],
            )
    owner: dict[int, PodState] = {}
    for pod in pods:
        for slot_range in pod.me.slots if pod.me.is_master else ():
            for slot in slot_range.slots():
                first = owner.setdefault(slot, pod)
                if first is not pod and not (
                    first.view_of(pod.node_id) and pod.view_of(first.node_id)
                ):
                    return about_pods(
                        Kind.TWO_CLUSTERS,
                        f"pods {first.pod} and {pod.pod} both own slot {slot} and do not know"
                        " each other: they are two separate clusters, and joining them would"
                        " drop one side's keys. Merge them by hand (redis-cli --cluster fix)"
                        " or give one an empty volume",
                        [first, pod],
                    )
    return None


def foreign_refusal(foreign: Sequence[tuple[PodState, NodeLine]]) -> Reason | None:
    """Nodes that are no pod of this StatefulSet, not even an old identity of one."""
    for pod, line in foreign:
        return Reason(
            Kind.FOREIGN_NODE,
            f"pod {pod.pod} knows node {line.node_id} at {line.address.render()}"
            f" ({','.join(sorted(line.flags))}), which is no pod of this StatefulSet, now or"
            " before (its hostname names none of them). If these volumes belong to another"
            " cluster, give this StatefulSet new ones; if it is a node you removed, run"
            " CLUSTER FORGET on every node",
            nodes=(line.node_id,),
            pods=(pod.pod,),
        )
    return None
