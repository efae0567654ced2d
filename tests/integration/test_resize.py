"""Resize by rerunning the Job with another size, on real servers, while a client writes: new
masters get their even share of slots with the keys, replicas attach; leaving pods give their
slots back and are let go; nothing is lost."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from clusterkit.core.slots import SLOT_COUNT
from devcluster.cluster import DevCluster
from devcluster.health import views, wait_healthy
from tests.integration.helpers import formed_with_keys, missing_keys, run_until_event, writing

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

MakeCluster = Callable[..., DevCluster]
KEYS = 3000


BIG_VALUE_BYTES = 8 * 1024 * 1024
"""Bigger than any MIGRATE batch of ordinary keys: one key, one batch."""


def write_every_type(cluster: DevCluster) -> dict[str, object]:
    """One key of each type (and one big string), spread over the slots; returns what a read
    gives back for each."""
    client = cluster.cluster_client()
    client.set("t:string", "v")
    client.set("t:big", "x" * BIG_VALUE_BYTES)
    client.hset("t:hash", mapping={"a": "1", "b": "2"})
    client.rpush("t:list", "a", "b", "c")
    client.sadd("t:set", "a", "b")
    client.zadd("t:zset", {"a": 1.0, "b": 2.5})
    client.xadd("t:stream", {"f": "v"}, id="1-1")
    return read_every_type(cluster)


def read_every_type(cluster: DevCluster) -> dict[str, object]:
    client = cluster.cluster_client()
    big = client.get("t:big")
    return {
        "string": client.get("t:string"),
        "big": (len(big), big[:1]) if big else None,
        "hash": client.hgetall("t:hash"),
        "list": client.lrange("t:list", 0, -1),
        "set": sorted(client.smembers("t:set")),
        "zset": client.zrange("t:zset", 0, -1, withscores=True),
        "stream": client.xrange("t:stream"),
    }


def slot_counts(cluster: DevCluster) -> dict[str, int]:
    """Master node id -> slots it owns, as every pod sees it (asserted to agree)."""
    seen = {
        tuple(sorted((n.node_id, n.slot_count) for n in lines if n.is_master and n.slots))
        for lines in views(cluster).values()
    }
    assert len(seen) == 1, seen
    return dict(next(iter(seen)))


@pytest.mark.slow
def test_six_to_nine_pods_at_two_replicas_per_master(make_cluster: MakeCluster) -> None:
    cluster, before = formed_with_keys(make_cluster, KEYS)
    cluster.add_pods(3, replicas_per_master=2)
    with writing(cluster) as during:
        result = cluster.run_job(timeout=300)
    assert result.returncode == 0, result.events[-3:]
    assert wait_healthy(cluster, masters=3, replicas_per_master=2, timeout=30) == []
    assert missing_keys(cluster, before) == []
    assert missing_keys(cluster, during) == []
    assert not [e for e in result.events if e["event"] == "slot_moved"]


@pytest.mark.slow
def test_job_killed_in_the_middle_of_a_move_then_rerun_loses_nothing(
    make_cluster: MakeCluster,
) -> None:
    cluster, before = formed_with_keys(make_cluster, KEYS)
    cluster.add_pods(2)
    seen = run_until_event(cluster, "slot_moved")  # SIGKILL with moves still running
    assert "slot_moved" in seen
    result = cluster.run_job(timeout=300)
    assert result.returncode == 0, result.events[-3:]
    assert wait_healthy(cluster, masters=4, replicas_per_master=1, timeout=30) == []
    counts = slot_counts(cluster)
    share = SLOT_COUNT / 4
    assert all(abs(c - share) <= share * 0.01 for c in counts.values()), counts
    assert missing_keys(cluster, before) == []


def assert_balanced(cluster: DevCluster, masters: int) -> None:
    counts = slot_counts(cluster)
    assert len(counts) == masters and sum(counts.values()) == SLOT_COUNT
    share = SLOT_COUNT / masters
    assert all(abs(c - share) <= share * 0.01 for c in counts.values()), counts


def six_scaled_out_to_eight(make_cluster: MakeCluster) -> tuple[DevCluster, dict[str, str]]:
    """6 pods holding KEYS keys, scaled out to 8 by the Job; returns the cluster and the keys."""
    cluster, before = formed_with_keys(make_cluster, KEYS)
    cluster.add_pods(2)
    assert cluster.run_job(timeout=300).returncode == 0
    return cluster, before


def assert_back_to_six(cluster: DevCluster, before: dict[str, str]) -> None:
    """The drained pods removed: 3 balanced masters with a replica each, every key readable."""
    cluster.remove_pods(2)
    assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=30) == []
    assert_balanced(cluster, 3)
    assert missing_keys(cluster, before) == []


def known_ids(cluster: DevCluster) -> set[str]:
    """Every node id any pod of the cluster lists."""
    return {n.node_id for lines in views(cluster).values() for n in lines}


@pytest.mark.slow
def test_move_parallelism_one_moves_one_pair_at_a_time_and_loses_nothing(
    make_cluster: MakeCluster,
) -> None:
    cluster, before = formed_with_keys(make_cluster, KEYS)
    cluster.add_pods(2)
    with writing(cluster) as during:
        result = cluster.run_job(timeout=300, MOVE_PARALLELISM="1")
    assert result.returncode == 0, result.events[-3:]
    sources = [e["pod"] for e in result.events if e["event"] == "slot_moved"]
    # With the default (4) the three sources' chunks to redis-6 interleave; with 1, each
    # source's moves form one block.
    blocks = [s for i, s in enumerate(sources) if i == 0 or sources[i - 1] != s]
    assert len(blocks) == len(set(sources)) == 3, blocks
    assert wait_healthy(cluster, masters=4, replicas_per_master=1, timeout=30) == []
    assert_balanced(cluster, 4)
    assert missing_keys(cluster, before) == []
    assert during, "the writer never got an acknowledged write"
    assert missing_keys(cluster, during) == []


@pytest.mark.slow
def test_six_to_eight_to_six_pods_under_writes_drains_the_leaving_pods(
    make_cluster: MakeCluster,
) -> None:
    cluster, before = formed_with_keys(make_cluster, KEYS)
    typed = write_every_type(cluster)
    cluster.add_pods(2)
    with writing(cluster) as during_out:
        out = cluster.run_job(timeout=300)
    assert out.returncode == 0, out.events[-3:]
    assert out.last("cluster_formed") is not None
    assert wait_healthy(cluster, masters=4, replicas_per_master=1, timeout=30) == []
    assert_balanced(cluster, 4)
    moved_out = [e for e in out.events if e["event"] == "slot_moved"]
    assert len(moved_out) == SLOT_COUNT // 4 and {e["target"] for e in moved_out} == {"redis-6"}
    assert missing_keys(cluster, before) == [] and read_every_type(cluster) == typed
    assert during_out, "the writer never got an acknowledged write"
    assert missing_keys(cluster, during_out) == []
    assert cluster.run_job().last("already_formed") is not None  # balanced: nothing moves
    leaving_ids = {cluster.client(p).cluster("myid") for p in ("redis-6", "redis-7")}
    with writing(cluster) as during_in:
        result = cluster.run_job(timeout=300, CLUSTER_SIZE="6")
    assert result.returncode == 0, result.events[-3:]
    moved = [e for e in result.events if e["event"] == "slot_moved"]
    failed = [e for e in result.events if e["event"] in ("move_slot_failed", "move_slots_failed")]
    assert {e["pod"] for e in moved} == {"redis-6"}, failed[:3]
    assert len({e["slot"] for e in moved}) == SLOT_COUNT // 4, failed[:3]
    last = result.events[-1]
    assert last["event"] == "ready_to_scale_down" and last["pods"] == ["redis-6", "redis-7"]
    for name in ("redis-6", "redis-7"):
        alone = cluster.client(name)
        assert len(alone.cluster("nodes")) == 1 and alone.dbsize() == 0
    cluster.remove_pods(2)
    assert wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=30) == []
    assert_balanced(cluster, 3)
    assert not known_ids(cluster) & leaving_ids, "a removed pod is still known"
    assert missing_keys(cluster, before) == []
    assert read_every_type(cluster) == typed
    assert during_in, "the writer never got an acknowledged write"
    assert missing_keys(cluster, {**during_out, **during_in}) == []
    rerun = cluster.run_job()
    assert rerun.returncode == 0 and rerun.last("already_formed") is not None


@pytest.mark.slow
def test_scale_in_with_the_job_killed_at_several_points_then_rerun_loses_nothing(
    make_cluster: MakeCluster,
) -> None:
    cluster, before = six_scaled_out_to_eight(make_cluster)
    for event in ("pods_beyond_cluster_size", "slot_moved", "moves_done", "forget"):
        seen = run_until_event(cluster, event, CLUSTER_SIZE="6")
        assert event in seen, seen[-3:]
    result = cluster.run_job(timeout=300, CLUSTER_SIZE="6")
    assert result.returncode == 0, result.events[-3:]
    assert_back_to_six(cluster, before)


@pytest.mark.slow
def test_two_jobs_scaling_in_at_once_end_with_one_balanced_cluster(
    make_cluster: MakeCluster,
) -> None:
    cluster, before = six_scaled_out_to_eight(make_cluster)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: cluster.run_job(timeout=300, CLUSTER_SIZE="6"), range(2)))
    assert [r.returncode for r in results] == [0, 0], [r.events[-2:] for r in results]
    assert_back_to_six(cluster, before)


@pytest.mark.slow
def test_both_lowered_at_once_is_a_lost_shard_until_the_pods_come_back(
    make_cluster: MakeCluster,
) -> None:
    cluster, before = six_scaled_out_to_eight(make_cluster)
    cluster.remove_pods(2)  # the StatefulSet scaled down before the Job drained anything
    refused = cluster.run_job(timeout=120, CLUSTER_SIZE="6")
    assert refused.returncode == 5, refused.events[-3:]
    error = str((refused.last("refused_unsafe") or {}).get("error"))
    # redis-6's slots, named after whichever pod owned them when both went: redis-6, or redis-7
    # when redis-6's preStop hook had handed them over to it first.
    assert "redis-6" in error or "redis-7" in error, error
    assert "scale the StatefulSet back up to 8 pods" in error, error
    cluster.add_pods(2)  # back, with their volumes: redis-6 (or redis-7) still owns the slots
    result = cluster.run_job(timeout=300, CLUSTER_SIZE="6")
    assert result.returncode == 0, result.events[-3:]
    assert_back_to_six(cluster, before)
