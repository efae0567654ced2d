"""The 127.X.0.0/16 ranges devclusters pick from: DEVCLUSTER_OCTETS, and the disjoint blocks the
integration tests' conftest gives each pytest-xdist worker."""

from __future__ import annotations

import pytest

from devcluster.jobs import OCTETS_ENV, octets
from tests.integration.helpers import worker_octets


def test_without_the_variable_every_devcluster_range_is_a_candidate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(OCTETS_ENV, raising=False)
    assert octets() == range(16, 251)


@pytest.mark.parametrize(("spec", "expected"), [("16-132", range(16, 133)), ("40", range(40, 41))])
def test_the_variable_names_the_candidates(
    monkeypatch: pytest.MonkeyPatch, spec: str, expected: range
) -> None:
    monkeypatch.setenv(OCTETS_ENV, spec)
    assert octets() == expected


def test_two_workers_get_two_halves() -> None:
    assert [worker_octets("gw0", 2), worker_octets("gw1", 2)] == ["16-132", "133-249"]


def test_four_workers_get_four_blocks_that_never_overlap() -> None:
    assert [worker_octets(f"gw{i}", 4) for i in range(4)] == [
        "16-73",
        "74-131",
        "132-189",
        "190-247",
    ]
