"""Fixtures for integration tests: real redis-server pods and a real DNS server on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devcluster.cluster import DevCluster
from devcluster.placement import BY_ORDINAL
from devcluster.servers import missing_server
from tests.integration.helpers import use_worker_octets


def pytest_configure(config: pytest.Config) -> None:
    """Each pytest-xdist worker's devclusters (and the tests' own loopback servers) take their
    127.X.0.0/16 ranges from that worker's block of X, so two workers never race for one."""
    use_worker_octets()


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., DevCluster]]:
    """Start devclusters (pods up, cluster NOT formed); all are torn down after the test."""
    problem = missing_server()
    if problem:
        pytest.fail(problem)
    started: list[DevCluster] = []

    def make(
        pods: int = 6,
        replicas_per_master: int = 1,
        *,
        users: bool = False,
        tls: bool = False,
        seed: int = BY_ORDINAL,
        nodes: int = 3,
        zones: int = 0,
        sidecar_env: dict[str, str] | None = None,
    ) -> DevCluster:
        cluster = DevCluster(tmp_path / f"cluster{len(started)}")
        started.append(cluster)
        cluster.up(
            pods,
            replicas_per_master,
            users=users,
            tls=tls,
            seed=seed,
            nodes=nodes,
            zones=zones,
            sidecar_env=sidecar_env,
        )
        return cluster

    yield make
    for cluster in started:
        cluster.down()
