"""Keys written before a day-2 event and a client writing during it, read back after."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from devcluster.cluster import DevCluster

WRITES_MAX = 100_000
"""Bound on the writer's loop (it stops when the test says so, long before)."""


def write_keys(cluster: DevCluster, count: int) -> None:
    client = cluster.cluster_client()
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.set(f"key:{i}", str(i))
    pipe.execute()


def formed_with_keys(
    make_cluster: Callable[..., DevCluster], count: int
) -> tuple[DevCluster, dict[str, str]]:
    """6 pods formed by the Job, holding `count` keys; returns the cluster and those keys."""
    cluster = make_cluster(6, 1)
    assert cluster.run_job().returncode == 0
    write_keys(cluster, count)
    return cluster, {f"key:{i}": str(i) for i in range(count)}


def missing_keys(cluster: DevCluster, keys: dict[str, str]) -> list[str]:
    client = cluster.cluster_client()
    return [k for k, v in keys.items() if client.get(k) != v]


@contextmanager
def writing(cluster: DevCluster) -> Iterator[dict[str, str]]:
    """A client writing new keys during the block; yields the writes it saw acknowledged."""
    acknowledged: dict[str, str] = {}
    stop = threading.Event()
    client = cluster.cluster_client()

    def write() -> None:
        for i in range(WRITES_MAX):
            if stop.is_set():
                return
            key = f"live:{i}"
            try:
                client.set(key, str(i))
            # Not acknowledged: the client follows MOVED/ASK, but may time out. AttributeError:
            # redis-py 8's cluster client can trip over its own slot cache while it refreshes
            # (seen in CI: 'NoneType' object has no attribute 'redis_connection'); the writer
            # must outlive that to keep writing through the whole move.
            except (redis.RedisError, AttributeError):
                continue
            acknowledged[key] = str(i)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        yield acknowledged
    finally:
        stop.set()
        thread.join(timeout=30)
