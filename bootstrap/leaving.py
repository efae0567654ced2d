"""Find the pods beyond CLUSTER_SIZE (scale in: they leave the cluster) and keep them observed.

They are found two ways: DNS, asking for `<statefulset>-<size>`, `-<size+1>`, ... until a name
does not exist (a StatefulSet's ordinals are contiguous), and the cluster's own views, whose
hostnames name every member. A leaving pod that does not answer while its name still resolves
makes the round incomplete (it is probably restarting); one whose name is gone was removed, and
the plan treats what the cluster still says about it like any departed node."""

from __future__ import annotations

from collections.abc import Sequence

import dns.resolver
import redis
import structlog

from bootstrap.podclients import PodClients
from clusterkit.core.identity import pod_ordinal
from clusterkit.core.model import PodState
from clusterkit.core.naming import PodNaming
from clusterkit.io.access import Access
from clusterkit.io.redisio import info_fields
from clusterkit.io.resetnode import persist_empty
from clusterkit.io.waiting import WaitTimeout

log = structlog.get_logger()

MAX_PROBED = 1000
"""How many ordinals beyond CLUSTER_SIZE are asked for at most (a bound, not a limit in use)."""


class LeavingPods:
    """Addresses of, and clients for, the pods from CLUSTER_SIZE on that exist."""

    def __init__(
        self,
        resolver: dns.resolver.Resolver,
        naming: PodNaming,
        size: int,
        *,
        port: int,
        access: Access,
        timeout: float,
    ) -> None:
        self.naming = naming
        self.size = size
        self.pods = PodClients(resolver, naming, port=port, access=access, timeout=timeout)
        self.seen: set[int] = set()
        """Every leaving ordinal ever found: the final event names them."""

    @property
    def addresses(self) -> dict[int, str]:
        return self.pods.addresses

    @property
    def clients(self) -> dict[int, redis.Redis]:
        return self.pods.clients

    def add(self, ordinal: int) -> bool:
        """Track `ordinal` if its name resolves; whether it does."""
        if not self.pods.follow(ordinal):
            return False
        self.seen.add(ordinal)
        return True

    def probe(self) -> None:
        """Ask DNS for the pods after the last one, in order, until a name does not exist."""
        ordinal = self.size
        while ordinal < self.size + MAX_PROBED and self.add(ordinal):
            ordinal += 1
        if self.addresses:
            log.info(
                "pods_beyond_cluster_size",
                cluster_size=self.size,
                pods=[self.naming.pod_name(o) for o in sorted(self.addresses)],
            )

    def track(self, pods: Sequence[PodState]) -> None:
        """Add leaving pods the views name that DNS probing did not find (beyond a gap)."""
        named = {
            ordinal
            for pod in pods
            for line in pod.nodes
            if (ordinal := pod_ordinal(line, self.naming)) is not None and ordinal >= self.size
        }
        for ordinal in sorted(named - self.addresses.keys()):
            self.add(ordinal)

    def drop_removed(self, unobserved: Sequence[int]) -> bool:
        """Forget the pods among `unobserved` whose name is gone; whether all of them were."""
        still = [o for o in unobserved if self.pods.follow(o)]
        for ordinal in set(unobserved) - set(still):
            log.info("leaving_pod_removed", pod=self.naming.pod_name(ordinal))
            self.pods.drop(ordinal)
        return not still

    def confirm_emptied(self) -> list[str]:
        """Rewrite the disk of every leaving pod that is out of the cluster and empty, and
        return what failed ("pod: why"). A reset is done only once its empty dataset is on
        disk, else a restart loads the old keys (clusterkit.io.resetnode); doing it again here
        also covers a Job killed between the reset and the rewrite. A pod still holding keys
        or knowing other nodes is left alone: it is no pod this Job emptied."""
        failed = []
        for ordinal, client in sorted(self.clients.items()):
            pod = self.naming.pod_name(ordinal)
            try:
                info = info_fields(client.execute_command("CLUSTER", "INFO"))
                if info.get("cluster_known_nodes") != "1" or int(client.dbsize()):
                    continue
                persist_empty(client, pod)
            except (redis.RedisError, OSError, WaitTimeout) as exc:
                failed.append(f"{pod}: {exc}")
        return failed
