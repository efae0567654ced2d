"""What `python -m sidecar status` shows, from what it read: a row per pod and the layout's
verdict, as a table for people or as JSON. Pure: no I/O (sidecar.status reads)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from clusterkit.core.domains import Placement, domain_kind, failure_domains, judge
from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import NodeLine
from clusterkit.core.viewlayout import failing_masters, quorum_lost, shards_in_view


@dataclass(frozen=True)
class PodReading:
    """What one pod's sidecar and Redis answered (None or empty: they did not)."""

    placement: Placement | None = None
    ready_reason: str = ""
    """/readyz's reason ("ready" when it answered 200)."""
    replication: Mapping[str, str] = field(default_factory=dict)
    """INFO replication of the pod's Redis."""


@dataclass(frozen=True)
class Row:
    pod: str
    node: str
    zone: str
    role: str
    master: str
    slots: int
    link: str
    lag: str
    ready: str


@dataclass(frozen=True)
class Status:
    rows: list[Row]
    layout: str
    """The failure-domain verdict: survives the loss of any one domain, or which loss not."""
    attention: list[str]
    """What waits for a person (empty: nothing)."""

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def as_table(self) -> str:
        headers = [name.upper() for name in Row.__dataclass_fields__]
        cells = [headers, *([str(v) for v in asdict(r).values()] for r in self.rows)]
        widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in cells
        ]
        lines.append("")
        lines.append(f"layout: {self.layout}")
        lines.extend(f"needs a person: {item}" for item in self.attention or ["nothing"])
        return "\n".join(lines)


def lag_of(line: NodeLine, readings: Mapping[str, PodReading], by_id: Mapping[str, str]) -> str:
    """A replica's lag in bytes behind its master's offset ("" when unknown)."""
    mine = readings.get(by_id.get(line.node_id, ""), PodReading()).replication
    master = readings.get(by_id.get(line.master_id or "", ""), PodReading()).replication
    try:
        return str(max(0, int(master["master_repl_offset"]) - int(mine["slave_repl_offset"])))
    except (KeyError, ValueError):
        return ""


def build_status(
    nodes: Sequence[NodeLine],
    pods: Mapping[str, int],
    naming: PodNaming,
    readings: Mapping[str, PodReading],
) -> Status:
    """The status from one node's CLUSTER NODES (`nodes`), node id -> pod ordinal (`pods`) and
    what each pod answered (pod name -> reading)."""
    by_id = {
        line.node_id: naming.pod_name(pods[line.node_id])
        if line.node_id in pods
        else line.address.ip or line.node_id[:8]
        for line in nodes
    }
    rows = []
    for line in sorted(nodes, key=lambda n: (pods.get(n.node_id, 1 << 30), n.node_id)):
        name = by_id[line.node_id]
        reading = readings.get(name, PodReading())
        place = reading.placement or Placement("?", "")
        link = reading.replication.get("master_link_status", "") if line.is_replica else ""
        rows.append(
            Row(
                pod=name,
                node=place.node,
                zone=place.zone or "-",
                role=role_of(line),
                master=by_id.get(line.master_id or "", "") if line.is_replica else "",
                slots=sum(r.count for r in line.slots),
                link=link or ("down" if line.is_replica and line.is_down else link),
                lag=lag_of(line, readings, by_id) if line.is_replica else "",
                ready=reading.ready_reason or "no answer",
            )
        )
    return Status(rows, layout_sentence(nodes, pods, readings, by_id), attention(nodes, by_id))


def role_of(line: NodeLine) -> str:
    role = "master" if line.is_master else "replica" if line.is_replica else "?"
    if line.is_failing:
        return f"{role} (failing)"
    return f"{role} (down)" if line.is_down else role


def layout_sentence(
    nodes: Sequence[NodeLine],
    pods: Mapping[str, int],
    readings: Mapping[str, PodReading],
    by_id: Mapping[str, str],
) -> str:
    shards = shards_in_view(nodes, pods)
    placements = {
        pods[i]: p
        for i, name in by_id.items()
        if i in pods and (p := readings.get(name, PodReading()).placement) is not None
    }
    if shards is None or len(placements) != len(nodes):
        return "unknown: some pod's node or zone did not answer"
    return judge(shards, failure_domains(placements)).sentence(domain_kind(placements))


def attention(nodes: Sequence[NodeLine], by_id: Mapping[str, str]) -> list[str]:
    """What Redis and the sidecars will not fix by themselves."""
    found = []
    if quorum_lost(nodes):
        lost = ", ".join(by_id[n.node_id] for n in failing_masters(nodes))
        found.append(
            f"quorum lost ({lost} unreachable): bring their node back, or run the Job once with"
            " TAKEOVER_LOST_MASTERS=true (writes they took alone are then lost)"
        )
    owners = {n.node_id for n in nodes if n.is_master and n.slots}
    if not any(n.is_replica for n in nodes):
        return found  # a cluster run without replicas (REPLICAS_PER_MASTER=0)
    for line in nodes:
        if line.node_id in owners and not any(
            r.is_replica and r.master_id == line.node_id for r in nodes
        ):
            found.append(f"{by_id[line.node_id]} is a master with no replica")
    return found
