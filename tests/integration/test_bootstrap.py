"""The bootstrap Job against real redis-server pods and a real DNS server (devcluster)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import cast

import pytest
import redis

from bootstrap.errors import ExitCode
from devcluster.cluster import DevCluster
from devcluster.health import views, wait_healthy
from devcluster.jobs import parse_events
from devcluster.placement import ORDINAL_TRAP_SEED
from tests.integration.helpers import missing_numbers, run_until_event, wait_for, write_keys

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

KEYS = 500

MakeCluster = Callable[..., DevCluster]


def settled_soon(cluster: DevCluster, masters: int, replicas_per_master: int) -> list[str]:
    """Problems left a few seconds after the Job (none expected). Formed means ok everywhere,
    every node known, one slot map, replica links up; a bus link or a `fail?` flag can still
    flicker right after on a loaded machine (a Valkey CI run saw one): Redis's gossip, not the
    Job's steps."""
    return wait_healthy(cluster, masters, replicas_per_master, timeout=15)


def roles(cluster: DevCluster) -> dict[str, tuple[str, str, str]]:
    return {r["pod"]: (r["role"], r["master"], r["slots"]) for r in cluster.roles()}


@pytest.mark.smoke  # make check: 6 pods formed by the Job, keys written and read back
def test_fresh_six_pods_form_three_masters_three_replicas(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(6, 1, seed=ORDINAL_TRAP_SEED)
    result = cluster.run_job()
    assert result.returncode == ExitCode.OK, result.events[-3:]
    summary = result.last("cluster_formed")
    assert summary is not None
    masters = cast(dict[str, str], summary["masters"])
    replicas = cast(dict[str, str], summary["replicas"])
    assert sorted(masters.values()) == ["0-5460", "10923-16383", "5461-10922"]
    # devcluster places pods as a scheduler with soft spreading does (seeded): in this
    # layout two of redis-0..2 share a node, so masters by ordinal would share one too.
    node = {p.name: p.node for p in cluster.require().pods}
    assert len({node[f"redis-{i}"] for i in range(3)}) < 3
    assert len({node[m] for m in masters}) == 3, node
    assert all(node[r] != node[m] for r, m in replicas.items())
    assert result.last("placement_unknown") is None
    assert settled_soon(cluster, masters=3, replicas_per_master=1) == []
    replica, master = next(iter(replicas.items()))
    assert roles(cluster)[replica] == ("replica", master, "-")
    write_keys(cluster, 100)
    assert missing_numbers(cluster, range(100)) == []


def test_nine_pods_two_replicas_each(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(9, 2)
    result = cluster.run_job()
    assert result.returncode == ExitCode.OK, result.events[-3:]
    assert settled_soon(cluster, masters=3, replicas_per_master=2) == []
    masters_of = {pod: role[1] for pod, role in roles(cluster).items() if role[0] == "replica"}
    assert sorted(masters_of) == [f"redis-{i}" for i in range(3, 9)]
    node = {p.name: p.node for p in cluster.require().pods}  # devcluster's Kubernetes nodes
    assert all(node[replica] != node[master] for replica, master in masters_of.items())


def test_rerun_on_a_formed_cluster_changes_nothing(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(6, 1)
    assert cluster.run_job().returncode == ExitCode.OK
    write_keys(cluster, 50)
    before = {pod: sorted(n.raw.split(" ")[0] for n in v) for pod, v in views(cluster).items()}
    epochs = cluster.client("redis-0").cluster("info")["cluster_current_epoch"]
    rerun = cluster.run_job()
    assert rerun.returncode == ExitCode.OK
    assert rerun.last("already_formed") is not None
    assert not [e for e in rerun.events if e["event"] == "step_applied"]
    after = {pod: sorted(n.raw.split(" ")[0] for n in v) for pod, v in views(cluster).items()}
    assert after == before
    assert cluster.client("redis-0").cluster("info")["cluster_current_epoch"] == epochs
    assert missing_numbers(cluster, range(50)) == []


@pytest.mark.parametrize("killed_after", ["set_config_epoch", "assign_slots", "meet", "replicate"])
def test_job_killed_after_a_step_then_rerun_heals(
    make_cluster: MakeCluster, killed_after: str
) -> None:
    cluster = make_cluster(6, 1)
    seen = run_until_event(cluster, killed_after)
    assert killed_after in seen, seen
    rerun = cluster.run_job()
    assert rerun.returncode == ExitCode.OK, rerun.events[-3:]
    assert wait_healthy(cluster, masters=3, replicas_per_master=1) == []


def form_masters_by_hand(cluster: DevCluster) -> redis.RedisCluster:
    """A half-formed cluster: pods 0-2 own every slot and serve; pods 3-5 are still alone."""
    masters = [cluster.client(f"redis-{i}") for i in range(3)]
    for client, ranges in zip(masters, [(0, 5460), (5461, 10922), (10923, 16383)], strict=True):
        first, last = ranges
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
    hub = cluster.require().pod("redis-0")
    for client in masters[1:]:
        client.execute_command("CLUSTER", "MEET", hub.ip, 6379, 16379)
    wait_for(
        lambda: all(c.cluster("info")["cluster_state"] == "ok" for c in masters),
        "the hand-formed masters' cluster_state ok",
        timeout=30,
    )
    state = cluster.require()
    return redis.RedisCluster(
        startup_nodes=[
            redis.cluster.ClusterNode(state.pod(f"redis-{i}").ip, 6379) for i in range(3)
        ],
        password=cluster.password,
        decode_responses=True,
    )


@pytest.mark.parametrize("killed_after", ["nodes_answering", "meet"])
@pytest.mark.slow
def test_job_killed_with_steps_left_on_a_cluster_with_keys_loses_none(
    make_cluster: MakeCluster, killed_after: str
) -> None:
    cluster = make_cluster(6, 1)
    client = form_masters_by_hand(cluster)
    for i in range(KEYS):
        client.set(f"key:{i}", str(i))
    seen = run_until_event(cluster, killed_after)
    assert killed_after in seen and "cluster_formed" not in seen, seen
    # Killed with work left: the replicas were not all attached yet.
    roles_now = [cluster.client(f"redis-{i}").info("replication")["role"] for i in range(3, 6)]
    assert roles_now != ["slave"] * 3, roles_now
    rerun = cluster.run_job()
    assert rerun.returncode == ExitCode.OK, rerun.events[-3:]
    assert wait_healthy(cluster, masters=3, replicas_per_master=1) == []
    assert roles(cluster)["redis-0"][2] == "0-5460"
    assert missing_numbers(cluster, range(KEYS)) == []
    for replica in ("redis-3", "redis-4", "redis-5"):  # the replicas hold the keys too
        assert cluster.client(replica).dbsize() > 0


def test_two_jobs_at_once_form_one_cluster(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(6, 1)
    first, second = cluster.start_job(), cluster.start_job()
    outputs = [p.communicate(timeout=120)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], [parse_events(o)[-2:] for o in outputs]
    assert settled_soon(cluster, masters=3, replicas_per_master=1) == []
    assert roles(cluster)["redis-0"] == ("master", "-", "0-5460")


def test_waits_for_a_dns_record_that_appears_late(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(6, 1)
    cluster.set_dns_hidden(["redis-4"], hidden=True)
    process = cluster.start_job()
    assert process.stdout is not None
    waited_for_it = False
    for line in process.stdout:
        event = json.loads(line)
        if event["event"] == "dns_progress" and "redis-4" in event["missing"]:
            waited_for_it = True
            break
    time.sleep(1.0)
    assert process.poll() is None, "the Job must keep waiting for the missing record"
    cluster.set_dns_hidden(["redis-4"], hidden=False)
    output, _ = process.communicate(timeout=120)
    assert waited_for_it
    assert process.returncode == ExitCode.OK, parse_events(output)[-2:]
    assert settled_soon(cluster, masters=3, replicas_per_master=1) == []


def assert_untouched(cluster: DevCluster) -> None:
    """Every node still knows only itself and owns no slot: the Job changed nothing."""
    for pod, lines in views(cluster).items():
        assert len(lines) == 1, pod
        assert lines[0].slots == (), pod


def test_dns_record_that_never_appears_exits_with_dns_code(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(6, 1)
    cluster.set_dns_hidden(["redis-5"], hidden=True)
    result = cluster.run_job(TIMEOUT_SECONDS="3")
    assert result.returncode == ExitCode.DNS_TIMEOUT
    error = result.last("dns_timeout")
    assert error is not None
    assert "redis-5" in str(error["error"])
    assert_untouched(cluster)


def test_node_with_keys_outside_the_cluster_is_refused(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(6, 1)
    stray = cluster.client("redis-5")
    slot = int(stray.execute_command("CLUSTER", "KEYSLOT", "precious"))
    # A node serves keys only while its cluster is ok: make it a one-slot cluster for a moment.
    stray.config_set("cluster-require-full-coverage", "no")
    stray.execute_command("CLUSTER", "ADDSLOTS", slot)
    wait_for(
        lambda: stray.cluster("info")["cluster_state"] == "ok",
        "redis-5's one-slot cluster ok",
        timeout=10,
    )
    stray.set("precious", "data")
    stray.execute_command("CLUSTER", "DELSLOTS", slot)
    stray.config_set("cluster-require-full-coverage", "yes")
    result = cluster.run_job()
    assert result.returncode == ExitCode.REFUSED_UNSAFE
    refusal = result.last("refused_unsafe")
    assert refusal is not None
    assert "redis-5 holds 1 keys" in str(refusal["error"])
    assert stray.execute_command("DBSIZE") == 1
    assert_untouched(cluster)


def test_node_that_knows_a_foreign_node_is_refused(make_cluster: MakeCluster) -> None:
    ours, other = make_cluster(6, 1), make_cluster(6, 1)
    foreign = other.require().pod("redis-0")
    # A pod of another StatefulSet (the same names would make it look like an old identity
    # of our redis-0, which is waited for until it fails, never forgotten while it answers).
    other.client("redis-0").config_set("cluster-announce-hostname", "cache-0.cache-headless")
    ours.client("redis-2").execute_command("CLUSTER", "MEET", foreign.ip, 6379, 16379)
    # Our node must first learn the foreign node's id (handshake entries carry random ids).
    wait_for(
        lambda: "handshake" not in str(ours.client("redis-2").cluster("nodes")),
        "redis-2's handshake with the foreign node done",
        timeout=10,
    )
    result = ours.run_job()
    assert result.returncode == ExitCode.REFUSED_UNSAFE
    assert "CLUSTER FORGET" in str((result.last("refused_unsafe") or {}).get("error"))


def test_pods_beyond_cluster_size_that_never_joined_are_left_out(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(9, 2)
    result = cluster.run_job(CLUSTER_SIZE="6", REPLICAS_PER_MASTER="1")
    assert result.returncode == ExitCode.OK, result.events[-3:]
    summary = result.last("cluster_formed") or {}
    assert summary.get("masters") == {
        "redis-0": "0-5460",
        "redis-1": "5461-10922",
        "redis-2": "10923-16383",
    }
    for name in ("redis-6", "redis-7", "redis-8"):
        assert len(cluster.client(name).cluster("nodes")) == 1, f"{name} was joined"
    last = result.events[-1]
    assert last["event"] == "ready_to_scale_down"
    assert last["pods"] == ["redis-6", "redis-7", "redis-8"] and last["replicas"] == 6


def test_wrong_password_exits_with_auth_code(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(6, 1)
    wrong = cluster.dirs.root / "wrong-password"
    wrong.write_text("not-the-password\n")
    result = cluster.run_job(REDIS_PASSWORD_FILE=str(wrong))
    assert result.returncode == ExitCode.AUTH_FAILED
    assert "REDIS_PASSWORD_FILE" in str((result.last("auth_failed") or {}).get("error"))
    assert_untouched(cluster)
