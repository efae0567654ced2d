"""The preStop hook's request file and the sidecar's answer (sidecar.prestopwatch), on a
directory like the pod's handover volume."""

from __future__ import annotations

import json
from pathlib import Path

from sidecar.prestopwatch import ANSWER, REQUEST, PrestopWatch


def test_a_request_runs_the_handover_once_and_answers_with_its_outcome(tmp_path: Path) -> None:
    calls: list[int] = []

    def hand_over() -> dict[str, object]:
        calls.append(1)
        return {"outcome": "handed_over"}

    watch = PrestopWatch(tmp_path, hand_over)
    (tmp_path / REQUEST).touch()
    assert watch.check()
    assert json.loads((tmp_path / ANSWER).read_text()) == {"outcome": "handed_over"}
    assert not watch.check()  # the request was taken: no second handover
    assert calls == [1]


def test_without_a_request_nothing_runs(tmp_path: Path) -> None:
    watch = PrestopWatch(tmp_path, lambda: {"outcome": "never"})
    assert not watch.check()
    assert not (tmp_path / ANSWER).exists()
