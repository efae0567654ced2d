"""The Job closes open slots (MIGRATING/IMPORTING left by an interrupted move) on real servers,
losing no key, and refuses, leaving both copies, when a key differs between the two sides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import redis
from redis.crc import key_slot

from bootstrap.errors import ExitCode
from devcluster.cluster import DevCluster
from devcluster.health import slot_map, views, wait_healthy

pytestmark = [pytest.mark.integration, pytest.mark.needs_server]

MakeCluster = Callable[..., DevCluster]
KEYS_PER_SLOT = 150
"""More than one MIGRATE batch (clusterkit.io.keycopies.BATCH_KEYS)."""
REJOIN_SECONDS = 60.0
"""A bound that stops a hang (a rejoin takes a few seconds)."""
RANGES = {"redis-0": (0, 5460), "redis-1": (5461, 10922), "redis-2": (10923, 16383)}
"""Where the Job puts the slots of a fresh 6-pod cluster."""


def formed(make_cluster: MakeCluster) -> DevCluster:
    cluster = make_cluster(6, 1)
    result = cluster.run_job()
    assert result.returncode == ExitCode.OK, result.events[-3:]
    return cluster


def tag_owned_by(pod: str, taken: set[int]) -> tuple[str, int]:
    """A hash tag `{tN}` whose slot `pod` owns and no other shape uses."""
    first, last = RANGES[pod]
    for n in range(10_000):
        tag = f"{{t{n}}}"
        slot = key_slot(tag.encode())
        if first <= slot <= last and slot not in taken:
            taken.add(slot)
            return tag, slot
    raise AssertionError(f"no free slot on {pod}")


def write(cluster: DevCluster, tag: str) -> dict[str, str]:
    client = cluster.cluster_client()
    values = {f"{tag}:{i}": f"value-{tag}-{i}" for i in range(KEYS_PER_SLOT)}
    for key, value in values.items():
        client.set(key, value)
    return values


def ids(cluster: DevCluster) -> dict[str, str]:
    return {
        f"redis-{i}": str(cluster.client(f"redis-{i}").execute_command("CLUSTER", "MYID"))
        for i in range(6)
    }


def setslot(cluster: DevCluster, pod: str, slot: int, *args: str) -> None:
    cluster.client(pod).execute_command("CLUSTER", "SETSLOT", slot, *args)


def migrate(cluster: DevCluster, source: str, target: str, keys: list[str], copy: bool) -> None:
    """MIGRATE by hand, as an interrupted reshard did (COPY leaves the key on both sides)."""
    ip = cluster.require().pod(target).ip
    options = ("COPY",) if copy else ()
    cluster.client(source).execute_command(
        "MIGRATE", ip, 6379, "", 0, 5000, *options, "AUTH", cluster.password, "KEYS", *keys
    )


def open_slots_seen(cluster: DevCluster) -> dict[str, tuple[str, ...]]:
    """Pod -> the `[slot->-id]` / `[slot-<-id]` fields of its own line, for pods that have any."""
    found = {}
    for pod, lines in views(cluster).items():
        me = next(line for line in lines if line.is_myself)
        if me.migrations:
            found[pod] = me.migrations
    return found


def owner_seen_by_all(cluster: DevCluster, slot: int) -> set[str]:
    """The owner of `slot` in every pod's view (one element when all agree)."""
    return {
        owner
        for lines in views(cluster).values()
        for first, last, owner in slot_map(lines)
        if first <= slot <= last
    }


def unreadable(cluster: DevCluster, values: dict[str, str]) -> list[str]:
    client = cluster.cluster_client()
    return [key for key, value in values.items() if client.get(key) != value]


@dataclass
class Shapes:
    """Open slots made by hand on one formed cluster, and what the Job must make of each."""

    cluster: DevCluster
    node: dict[str, str]
    """Pod -> its Redis node id."""
    values: dict[str, str] = field(default_factory=dict)
    """Every key written, with its value."""
    owner_after: dict[int, str] = field(default_factory=dict)
    moved: set[int] = field(default_factory=set)
    """Slots whose keys the Job must move."""

    def slot(self, owner: str, *, owner_after: str, moved: bool) -> tuple[int, list[str]]:
        """A fresh slot of `owner`'s, filled with keys."""
        tag, slot = tag_owned_by(owner, set(self.owner_after))
        written = write(self.cluster, tag)
        self.values |= written
        self.owner_after[slot] = owner_after
        if moved:
            self.moved.add(slot)
        return slot, sorted(written)

    def importing(self, pod: str, slot: int, source: str) -> None:
        setslot(self.cluster, pod, slot, "IMPORTING", self.node[source])

    def migrating(self, pod: str, slot: int, target: str) -> None:
        setslot(self.cluster, pod, slot, "MIGRATING", self.node[target])


def test_open_slot_shapes_are_closed_and_every_key_kept(make_cluster: MakeCluster) -> None:
    cluster = formed(make_cluster)
    shapes = Shapes(cluster, ids(cluster))

    # (1) redis-0 migrates to redis-1, which imports; every key still on redis-0.
    slot, _ = shapes.slot("redis-0", owner_after="redis-1", moved=True)
    shapes.importing("redis-1", slot, "redis-0")
    shapes.migrating("redis-0", slot, "redis-1")

    # (2) redis-1 migrates to redis-2, half the keys moved already, one key on both sides
    # with the same value (BUSYKEY, moved again with REPLACE).
    busy_slot, keys = shapes.slot("redis-1", owner_after="redis-2", moved=True)
    shapes.importing("redis-2", busy_slot, "redis-1")
    shapes.migrating("redis-1", busy_slot, "redis-2")
    migrate(cluster, "redis-1", "redis-2", keys[: KEYS_PER_SLOT // 2], copy=False)
    migrate(cluster, "redis-1", "redis-2", keys[-1:], copy=True)

    # (3) redis-2 migrating to redis-0, which never started importing: closed with STABLE.
    slot, _ = shapes.slot("redis-2", owner_after="redis-2", moved=False)
    shapes.migrating("redis-2", slot, "redis-0")

    # (4) redis-2 importing a slot of redis-0's and holding none of its keys.
    slot, _ = shapes.slot("redis-0", owner_after="redis-0", moved=False)
    shapes.importing("redis-2", slot, "redis-0")

    # (5) redis-0 importing a slot of redis-1's and holding some of its keys: they go home.
    cold_slot, keys = shapes.slot("redis-1", owner_after="redis-1", moved=True)
    shapes.importing("redis-0", cold_slot, "redis-1")
    migrate(cluster, "redis-1", "redis-0", keys[:40], copy=False)

    # (6) a move cut short after SETSLOT NODE reached the target: the source is left open.
    slot, keys = shapes.slot("redis-2", owner_after="redis-0", moved=False)
    shapes.importing("redis-0", slot, "redis-2")
    shapes.migrating("redis-2", slot, "redis-0")
    migrate(cluster, "redis-2", "redis-0", keys, copy=False)
    setslot(cluster, "redis-0", slot, "NODE", shapes.node["redis-0"])

    # (7) the owner migrates to a node that never imported, while another node imports and
    # holds keys: the owner is set STABLE before the keys come back (else it answers ASK).
    slot, keys = shapes.slot("redis-1", owner_after="redis-1", moved=True)
    shapes.importing("redis-2", slot, "redis-1")
    migrate(cluster, "redis-1", "redis-2", keys[:30], copy=False)
    shapes.migrating("redis-1", slot, "redis-0")

    # Valkey 8 replicates SETSLOT: there the replicas show the open slots too.
    assert {"redis-0", "redis-1", "redis-2"} <= set(open_slots_seen(cluster))
    result = cluster.run_job()
    assert result.returncode == ExitCode.OK, result.events[-3:]
    assert {e["slot"] for e in result.events if e["event"] == "slot_moved"} == shapes.moved
    # The key copied to both sides with one value moves with REPLACE. (On a loaded machine a
    # batch whose MIGRATE reply was lost is retried the same way: the copies are identical.)
    replaced = {e["slot"] for e in result.events if e["event"] == "identical_keys_replaced"}
    assert busy_slot in replaced
    assert not [e for e in result.events if e["event"] == "key_conflict"]
    assert open_slots_seen(cluster) == {}
    for slot, pod in shapes.owner_after.items():
        assert owner_seen_by_all(cluster, slot) == {shapes.node[pod]}, slot
    assert unreadable(cluster, shapes.values) == []
    for pod, count in (("redis-0", 0), ("redis-1", KEYS_PER_SLOT)):
        assert cluster.client(pod).execute_command("CLUSTER", "COUNTKEYSINSLOT", cold_slot) == count
    rerun = cluster.run_job()
    assert rerun.returncode == ExitCode.OK and rerun.last("already_formed"), rerun.events[-3:]


def test_key_with_different_values_on_both_sides_stops_the_job(
    make_cluster: MakeCluster,
) -> None:
    cluster = formed(make_cluster)
    node = ids(cluster)
    tag, slot = tag_owned_by("redis-0", set())
    values = write(cluster, tag)
    setslot(cluster, "redis-1", slot, "IMPORTING", node["redis-0"])
    setslot(cluster, "redis-0", slot, "MIGRATING", node["redis-1"])
    key = sorted(values)[0]
    # The same key written on the importing side with another value (as a client sent there
    # by ASK would).
    pipe = cluster.client("redis-1").pipeline(transaction=False)
    pipe.execute_command("ASKING")
    pipe.set(key, "other")
    pipe.execute()

    result = cluster.run_job()
    assert result.returncode == ExitCode.REFUSED_UNSAFE, result.events[-3:]
    refusal = result.last("refused_unsafe")
    assert refusal is not None
    assert f"key {key!r}" in str(refusal["error"]), refusal
    assert "redis-0" in str(refusal["error"]) and "redis-1" in str(refusal["error"])
    assert cluster.client("redis-0").get(key) == values[key]
    assert asking_get(cluster.client("redis-1"), key) == "other"
    # Every other key is still readable (through ASK where it moved already).
    assert unreadable(cluster, {k: v for k, v in values.items() if k != key}) == []


def asking_get(client: redis.Redis, key: str) -> object:
    pipe = client.pipeline(transaction=False)
    pipe.execute_command("ASKING")
    pipe.get(key)
    return pipe.execute()[1]


@pytest.mark.slow
def test_a_replica_that_lost_its_volume_rejoins_while_a_slot_stays_open(
    make_cluster: MakeCluster,
) -> None:
    """A move left open by hand (no Job runs) blocks no rejoin: the sidecar of a replica back
    with an empty volume forgets its old identity and replicates again; the slot stays as it
    was until the Job closes it."""
    cluster = formed(make_cluster)
    shapes = Shapes(cluster, ids(cluster))
    slot, keys = shapes.slot("redis-0", owner_after="redis-1", moved=True)
    shapes.importing("redis-1", slot, "redis-0")
    shapes.migrating("redis-0", slot, "redis-1")
    migrate(cluster, "redis-0", "redis-1", keys[: len(keys) // 2], copy=False)
    replica = next(r["pod"] for r in cluster.roles() if r["master"] == "redis-2")
    old = str(cluster.client(replica).execute_command("CLUSTER", "MYID"))
    cluster.wipe([replica])
    left = wait_healthy(cluster, masters=3, replicas_per_master=1, timeout=REJOIN_SECONDS)
    assert left == [], left
    assert not any(old in str(n.node_id) for lines in views(cluster).values() for n in lines)
    # The Job's to close (Valkey 8 shows the states on the replicas too).
    assert {"redis-0", "redis-1"} <= set(open_slots_seen(cluster))
    assert unreadable(cluster, shapes.values) == []
    result = cluster.run_job()
    assert result.returncode == ExitCode.OK, result.events[-3:]
    assert open_slots_seen(cluster) == {}
    assert unreadable(cluster, shapes.values) == []
