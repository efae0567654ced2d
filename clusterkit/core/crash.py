"""A crashed master's fast failover: when its Redis is gone, and which replica takes over.

Redis's own failover waits cluster-node-timeout for the other masters to flag the node, then an
election. The sidecar beside a master knows sooner: connections to its own address are refused
(nothing listens: the process died, or its container is restarting). A timeout is a hang, not a
crash, and a reply of any kind (LOADING, an error) means a Redis is there; both reset the count.

Pure: the probes' outcomes and the replicas' own replies come in, decisions go out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from clusterkit.core.nodes import NodeLine

STALE_LINK_SECONDS = 10
"""A replica whose link to the master was already down this long before the crash was not
following it: taking over with FORCE would lose what it missed (Redis's own election refuses
replicas whose data is too old, too)."""


@dataclass
class RefusalWindow:
    """Counts refused connections in a row; says "crashed" once `needed` of them fall within
    `window_seconds`. Anything but a refusal starts the count again."""

    needed: int
    window_seconds: float
    refused_at: list[float] = field(default_factory=list)

    def observe(self, refused: bool, now: float) -> bool:
        """Record one probe at `now` (seconds, any monotonic clock); True: Redis crashed."""
        if not refused:
            self.refused_at.clear()
            return False
        self.refused_at.append(now)
        self.refused_at[:] = [t for t in self.refused_at if now - t <= self.window_seconds]
        return len(self.refused_at) >= self.needed

    def reset(self) -> None:
        self.refused_at.clear()


@dataclass(frozen=True)
class ReplicaReport:
    """What a replica of the crashed master says of itself, read just after the crash."""

    master_id: str
    """The master its own view names for it ("" when it is a master itself)."""
    offset: int
    """Its replication offset (INFO replication slave_repl_offset)."""
    link_down_seconds: int
    """master_link_down_since_seconds; 0 while the link still counts as up."""


def crash_successors(
    replicas: Sequence[NodeLine],
    master_id: str,
    reports: Mapping[str, ReplicaReport],
    domains: Mapping[str, str],
    masters: Sequence[NodeLine],
) -> list[NodeLine]:
    """The crashed master's replicas that may take over with FORCE, best first.

    `replicas`: its replicas as its last view listed them; `reports`: node id -> what each one
    answered now (missing: it did not answer); `masters`: the other slot owners of that view.
    A replica qualifies if it still follows `master_id` and its link was not down long before
    the crash. Highest offset first (FORCE waits for nobody: the offset is what survives),
    then the failure domain holding the fewest other masters, then node id, so the choice is
    deterministic."""
    masters_in = Counter(domains.get(m.node_id) for m in masters if m.node_id != master_id)
    usable = [
        n
        for n in replicas
        if n.node_id in reports
        and reports[n.node_id].master_id == master_id
        and reports[n.node_id].link_down_seconds <= STALE_LINK_SECONDS
        and "nofailover" not in n.flags
    ]
    return sorted(
        usable,
        key=lambda n: (
            -reports[n.node_id].offset,
            masters_in[domains[n.node_id]] if n.node_id in domains else 0,
            n.node_id,
        ),
    )
