"""Prometheus metrics of one pod: what Redis says of the cluster, and what the sidecar did."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    """One registry per sidecar (not the global one: tests run several in a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # `selfform_`: clear of redis_exporter's `redis_*` names, which users often scrape beside.
        self.cluster_state_ok = Gauge(
            "selfform_cluster_state_ok", "1 when CLUSTER INFO says cluster_state:ok", registry=r
        )
        self.slots = Gauge(
            "selfform_cluster_slots", "Slots by state, from CLUSTER INFO", ["state"], registry=r
        )
        self.known_nodes = Gauge(
            "selfform_cluster_known_nodes", "Nodes this node knows", registry=r
        )
        self.cluster_nodes = Gauge(
            "selfform_cluster_nodes",
            "Nodes of the cluster this node sees, not failing, by role (master: owns slots)",
            ["role"],
            registry=r,
        )
        self.is_master = Gauge("selfform_is_master", "1 for a master, 0 for a replica", registry=r)
        self.master_link_up = Gauge(
            "selfform_master_link_up", "Replica's link to its master (1 on masters)", registry=r
        )
        self.slots_without_live_owner = Gauge(
            "selfform_slots_without_live_owner",
            "Slots whose master is failing with no live replica (a lost shard when its pod came"
            " back empty), by owner node, its pod and the slot ranges (`owner_pod`: Prometheus"
            " adds the scraped pod's own `pod` label)",
            ["node", "owner_pod", "slots"],
            registry=r,
        )
        self.redis_up = Gauge(
            "selfform_redis_up", "1 when Redis answered the last PING", registry=r
        )
        self.memory_used = Gauge("selfform_memory_used_bytes", "INFO used_memory", registry=r)
        self.memory_max = Gauge(
            "selfform_memory_max_bytes", "INFO maxmemory (0: no limit)", registry=r
        )
        self.persistence_ok = Gauge(
            "selfform_persistence_last_ok",
            "1 when the last operation of that kind succeeded (aof_write: the last AOF write,"
            " aof_rewrite: the last AOF rewrite, rdb_save: the last RDB save)",
            ["operation"],
            registry=r,
        )
        self.replication_offset = Gauge(
            "selfform_replication_offset_bytes",
            "INFO master_repl_offset: the replication stream position this node has",
            registry=r,
        )
        self.replica_lag_bytes = Gauge(
            "selfform_replica_lag_bytes",
            "On a master: how far each connected replica is behind (offset difference)",
            ["replica"],
            registry=r,
        )
        self.replica_lag_seconds = Gauge(
            "selfform_replica_lag_seconds",
            "On a master: seconds since each connected replica last acknowledged",
            ["replica"],
            registry=r,
        )
        self.master_last_io = Gauge(
            "selfform_master_last_io_seconds",
            "On a replica: seconds since its master last spoke (INFO master_last_io_seconds_ago)",
            registry=r,
        )
        self.connected_clients = Gauge(
            "selfform_connected_clients", "INFO connected_clients", registry=r
        )
        self.commands_per_second = Gauge(
            "selfform_commands_per_second", "INFO instantaneous_ops_per_sec", registry=r
        )
        self.master_replicas = Gauge(
            "selfform_master_connected_replicas",
            "On a master (labelled with its pod): replicas connected to it",
            ["master"],
            registry=r,
        )
        self.replicas_on_master_node = Gauge(
            "selfform_replicas_on_master_node",
            "On a master (labelled with its pod): its replicas running on the same Kubernetes"
            " node (one node failure would take the shard)",
            ["master"],
            registry=r,
        )
        self.nodes_conf_rewrites = Gauge(
            "sidecar_nodes_conf_fixes",
            "Startup nodes.conf fix, 1 for its outcome",
            ["outcome"],
            registry=r,
        )
        self.heal_meets = Counter(
            "sidecar_heal_meets", "CLUSTER MEETs sent to heal a peer's address", registry=r
        )
        self.heal_failures = Counter(
            "sidecar_heal_failures", "Heal steps that failed (retried next turn)", registry=r
        )
        self.dns_failures = Counter(
            "sidecar_dns_failures", "Pod names that did not resolve", registry=r
        )
        self.loop_turns = Counter("sidecar_loop_turns", "Turns of the sidecar's loop", registry=r)
        self.loop_errors = Counter(
            "sidecar_loop_errors",
            "Turns of the sidecar's loop that raised an unexpected exception (logged with its"
            " traceback as turn_crashed; the loop turns on)",
            registry=r,
        )
        self.handovers = Counter(
            "sidecar_handovers",
            "preStop hooks answered, by outcome (handed_over, replica, no_slots,"
            " no_healthy_replica, timed_out, failed)",
            ["outcome"],
            registry=r,
        )
        self.crash_failovers = Counter(
            "sidecar_crash_failovers",
            "Crashes of this pod's Redis as a master acted on by the crash watch, by outcome"
            " (took_over: a replica took over with CLUSTER FAILOVER FORCE; no_replica: none fit;"
            " not_taken: none became master in time)",
            ["outcome"],
            registry=r,
        )
        self.tls_reloads = Counter(
            "sidecar_tls_reloads",
            "Renewed TLS files Redis was told to load (CONFIG SET), by outcome (ok, failed)",
            ["outcome"],
            registry=r,
        )
        self.rejoin_forgets = Counter(
            "sidecar_rejoin_forgets",
            "CLUSTER FORGETs sent for an old identity of this pod (a replaced pod rejoining)",
            registry=r,
        )
        self.peer_timeouts = Counter(
            "sidecar_peer_timeouts",
            "Unreachable peers that did not answer in time where their pod's name points (each"
            " is then asked less and less often)",
            registry=r,
        )
        # The failure-domain layout, as this pod's sidecar last judged it (clusterkit.core.domains).
        self.layout_fatal_domain = Gauge(
            "selfform_layout_fatal_domain",
            "1 for each failure domain (zone, else Kubernetes node) whose loss would take the"
            " cluster down: `reason` quorum (half or more of the slot-owning masters there) or"
            " shard (every copy of some shard there)",
            ["domain", "reason"],
            registry=r,
        )
        self.layout_achievable = Gauge(
            "selfform_layout_achievable",
            "1 when the number of masters and the known failure domains allow a layout that"
            " survives the loss of any one domain (0: e.g. 4 masters on 3 domains; change the"
            " number of masters or of domains)",
            registry=r,
        )
        self.quorum_lost = Gauge(
            "selfform_quorum_lost",
            "1 when half or more of the slot-owning masters are unreachable in this node's view:"
            " Redis cannot fail them over, and the cluster stays down until they return or the"
            " Job takes over with TAKEOVER_LOST_MASTERS",
            registry=r,
        )
        self.unreachable_master_seconds = Gauge(
            "selfform_unreachable_master_seconds",
            "For each slot-owning master this node sees as failing: seconds since first seen so",
            ["node", "owner_pod"],
            registry=r,
        )
        self.drift_repairs = Counter(
            "sidecar_drift_repairs",
            "Layout repairs this sidecar carried out, by kind (failover: a replica took over"
            " with CLUSTER FAILOVER; swap: two replicas swapped masters with CLUSTER REPLICATE;"
            " relink: CLUSTER REPLICATE to the same master at its new address)",
            ["kind"],
            registry=r,
        )
