"""What the integration tests share (no test module imports another): waiting for a condition,
keys written before a day-2 event and a client writing during it, Jobs run in the background or
killed after a step, and the loopback octets this test process may use.

Rendered-manifest helpers live in kustomize.py (the manifest tests start no server)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import redis

from bootstrap.lease import GENERATION_KEY, HOLDER_KEY
from clusterkit.io.httpget import http_get
from clusterkit.io.waiting import WaitTimeout, wait_until
from devcluster.cluster import DevCluster
from devcluster.jobs import OCTETS_ENV, octets, parse_events
from devcluster.manifests import load as load_manifests

MakeCluster = Callable[..., DevCluster]

# --- waiting ---------------------------------------------------------------------------------


def wait_for(
    check: Callable[[], object],
    what: str,
    timeout: float,
    *,
    interval: float = 0.1,
    retry_on: tuple[type[BaseException], ...] = (),
    last_seen: Callable[[], str] | None = None,
) -> None:
    """Poll `check` every `interval` seconds until it is truthy; at `timeout`, fail the test with
    an AssertionError naming `what` (and `last_seen()`, else the last error in `retry_on`)."""
    try:
        wait_until(
            check,
            timeout=timeout,
            what=what,
            interval=interval,
            retry_on=retry_on,
            last_seen=last_seen,
        )
    except WaitTimeout as exc:
        raise AssertionError(str(exc)) from None


# --- keys ------------------------------------------------------------------------------------


def numbered_keys(count: int) -> dict[str, str]:
    """The keys write_keys writes: key:0..key:{count-1}, each holding its number."""
    return {f"key:{i}": str(i) for i in range(count)}


def write_keys(cluster: DevCluster, count: int) -> None:
    """Write numbered_keys(count) through the cluster client (one pipeline)."""
    client = cluster.cluster_client()
    pipe = client.pipeline(transaction=False)
    for key, value in numbered_keys(count).items():
        pipe.set(key, value)
    pipe.execute()


def missing_keys(cluster: DevCluster, keys: dict[str, str]) -> list[str]:
    """The keys of `keys` that do not read back their value."""
    client = cluster.cluster_client()
    return [k for k, v in keys.items() if client.get(k) != v]


def missing_numbers(cluster: DevCluster, numbers: Iterable[int]) -> list[int]:
    """The numbers i of `numbers` whose key:{i} does not read back str(i) (write_keys' keys)."""
    client = cluster.cluster_client()
    return [i for i in numbers if client.get(f"key:{i}") != str(i)]


def formed_with_keys(
    make_cluster: MakeCluster,
    count: int,
    pods: int = 6,
    replicas_per_master: int = 1,
    *,
    sidecar_env: dict[str, str] | None = None,
) -> tuple[DevCluster, dict[str, str]]:
    """`pods` pods formed by the Job, holding `count` numbered keys; (the cluster, those keys)."""
    cluster = make_cluster(pods, replicas_per_master, sidecar_env=sidecar_env)
    result = cluster.run_job()
    assert result.returncode == 0, result.events[-3:]
    write_keys(cluster, count)
    return cluster, numbered_keys(count)


WRITES_MAX = 100_000
"""Bound on the writer's loop (it stops when the test says so, long before)."""


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


def role(cluster: DevCluster, pod: str) -> tuple[str, str]:
    """(master or replica, its master's pod or "-") as `pod` says of itself."""
    return next((r["role"], r["master"]) for r in cluster.roles() if r["pod"] == pod)


# --- the sidecar's HTTP endpoints ------------------------------------------------------------


def sidecar_get(cluster: DevCluster, pod: str, path: str) -> tuple[int, str]:
    """GET `path` from `pod`'s sidecar: (status, body)."""
    port = load_manifests().sidecar_port
    return http_get(f"http://{cluster.require().pod(pod).ip}:{port}{path}")


# --- Jobs ------------------------------------------------------------------------------------

JOB_SECONDS = 300.0
"""A bound that stops a hang (a Job moving tens of thousands of keys takes seconds)."""


class RunningJob:
    """A Job process whose output is read as it comes (a full pipe would stall the Job)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def said(self, event: str) -> bool:
        return any(f'"event": "{event}"' in line for line in list(self.lines))

    def end(self) -> tuple[int, list[dict[str, object]]]:
        code = self.process.wait(timeout=JOB_SECONDS)
        self.reader.join(timeout=10)
        if not self.reader.is_alive():
            assert self.process.stdout is not None
            self.process.stdout.close()  # read to its end
        return code, parse_events("".join(self.lines))


def outcome(events: list[dict[str, object]]) -> object:
    """The Job's last word on the cluster (the lease's release may be logged after it)."""
    return [e["event"] for e in events if not str(e["event"]).startswith("job_lease")][-1]


def run_until_event(
    cluster: DevCluster, event: str, timeout: float = 60.0, **overrides: str
) -> list[str]:
    """Start a Job, SIGKILL it right after it logs `event`; returns the events it logged."""
    process = cluster.start_job(**overrides)
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        for line in process.stdout:
            name = json.loads(line).get("event", "")
            seen.append(name)
            if name == event or time.monotonic() > deadline:
                break
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        process.stdout.close()
    return seen


def open_or_split(cluster: DevCluster, keys: int) -> list[str]:
    """Slots some master left open, and keys held beyond what a client can read (a slot's keys
    on two nodes): [] when neither."""
    found = []
    held = 0
    for role in cluster.roles():
        if role["role"] != "master":
            continue
        client = cluster.client(role["pod"])
        mine = next(
            line
            for line in client.execute_command("CLUSTER", "NODES").splitlines()
            if "myself" in line
        )
        if "[" in mine:
            found.append(f"{role['pod']} has open slots: {mine.split('[', 1)[1][:60]}")
        held += int(client.dbsize())
    lease_keys = int(cluster.cluster_client().exists(GENERATION_KEY, HOLDER_KEY))
    if held != keys + lease_keys:
        found.append(f"the masters hold {held} keys, {keys + lease_keys} exist")
    return found


# --- loopback addresses ----------------------------------------------------------------------

OCTET_FIRST, OCTET_LAST = 16, 250
"""The second octets of 127.X.0.0/16 the suite uses (devcluster's default range)."""


def worker_octets(worker: str, workers: int) -> str:
    """pytest-xdist worker `worker`'s own block of second octets, as DEVCLUSTER_OCTETS spells
    it: of 2 workers, gw0 gets 16-132 and gw1 133-249; blocks never overlap."""
    index = int(worker.removeprefix("gw"))
    size = (OCTET_LAST - OCTET_FIRST + 1) // workers
    first = OCTET_FIRST + index * size
    return f"{first}-{first + size - 1}"


def use_worker_octets() -> None:
    """Under pytest-xdist, point devcluster (and random_octet) at this worker's own block
    (conftest, at startup); without xdist, DEVCLUSTER_OCTETS is left as it is."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker:
        workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
        os.environ[OCTETS_ENV] = worker_octets(worker, workers)


def random_octet() -> int:
    """A second octet from this worker's block, for tests that bind loopback addresses of their
    own (a DNS server, bare redis-servers) beside the devclusters of other workers."""
    return random.choice(octets())
