"""Reset a node leaving the cluster (scale in), and make its disk agree.

`CLUSTER RESET` on a replica empties its dataset in memory only: its append-only file
keeps the copies it last synced, so a restart loads them (measured, Redis 7.0.15: "keys
loaded: 1646" after a reset that left DBSIZE 0), and the node, knowing no cluster, then claims
every slot it has keys in ("I have keys for unassigned slot ..."). A pod scaled out again
later with that volume would then be refused as a second cluster. So after the reset the node
rewrites its persistence from the empty dataset (BGREWRITEAOF, or BGSAVE without AOF), and the
step is done only once that has finished."""

from __future__ import annotations

from collections.abc import Sequence

import redis
import structlog

from clusterkit.core.model import Reset
from clusterkit.core.naming import PodNaming
from clusterkit.io.redisio import info_fields
from clusterkit.io.waiting import WaitTimeout, wait_until

log = structlog.get_logger()

PERSIST_SECONDS = 60.0
"""How long rewriting an emptied node's persistence may take (it holds no keys: moments)."""
ALREADY_RUNNING = ("already in progress",)
"""BGREWRITEAOF / BGSAVE while one runs: it may have started before the reset, so retry."""


def reset_nodes(
    resets: Sequence[Reset], clients: dict[int, redis.Redis], naming: PodNaming
) -> dict[Reset, str]:
    """Reset each node and persist its empty dataset: "done" or "failed" per step."""
    outcomes: dict[Reset, str] = {}
    for step in resets:
        pod = naming.pod_name(step.ordinal)
        client = clients[step.ordinal]
        try:
            client.execute_command("CLUSTER", "RESET", "HARD")
            persist_empty(client, pod)
        except (redis.RedisError, OSError, WaitTimeout) as exc:
            log.warning("step_failed", step="reset", pod=pod, error=str(exc))
            outcomes[step] = "failed"
            continue
        outcomes[step] = "done"
    return outcomes


def persist_empty(client: redis.Redis, pod: str) -> None:
    """Rewrite the node's AOF (or RDB) from its dataset and wait until that is on disk. Refuses
    (RedisError) a node that holds keys: only an emptied node's disk is rewritten here."""
    keys = int(client.dbsize())
    if keys:
        raise redis.ResponseError(f"{pod} still holds {keys} keys after CLUSTER RESET")
    aof = info_fields(client.execute_command("INFO", "persistence")).get("aof_enabled") == "1"
    command = "BGREWRITEAOF" if aof else "BGSAVE"

    def started() -> bool:
        try:
            client.execute_command(command)
        except redis.ResponseError as exc:
            if any(marker in str(exc) for marker in ALREADY_RUNNING):
                return False
            raise
        return True

    def finished() -> bool:
        info = info_fields(client.execute_command("INFO", "persistence"))
        if aof:
            busy = info.get("aof_rewrite_in_progress") != "0"
            busy = busy or info.get("aof_rewrite_scheduled") != "0"
            status = info.get("aof_last_bgrewrite_status")
        else:
            busy = info.get("rdb_bgsave_in_progress") != "0"
            status = info.get("rdb_last_bgsave_status")
        if not busy and status != "ok":
            raise redis.ResponseError(f"{command} on {pod} failed ({status}): see its Redis log")
        return not busy

    wait_until(started, timeout=PERSIST_SECONDS, what=f"{command} to start on {pod}")
    wait_until(finished, timeout=PERSIST_SECONDS, what=f"{command} to finish on {pod}")
    log.info("reset_persisted", pod=pod, command=command)
