"""The one atomic file write and the one way to wait (io.atomicfile, io.waiting)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from clusterkit.io.atomicfile import write_atomically
from clusterkit.io.waiting import Deadline, WaitTimeout, wait_until


def test_a_new_file_gets_the_bytes_and_mode_given(tmp_path: Path) -> None:
    path = tmp_path / "nodes.conf"
    write_atomically(path, "a b\r\nc\n", mode=0o600)
    assert path.read_bytes() == b"a b\r\nc\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nodes.conf"]


def test_a_replaced_file_keeps_its_mode_and_owner(tmp_path: Path) -> None:
    path = tmp_path / "nodes.conf"
    path.write_bytes(b"old")
    path.chmod(0o640)
    if os.geteuid() == 0:  # only root can give a file away: Redis's user owns nodes.conf
        os.chown(path, 4321, 4321)
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert path.stat().st_mode & 0o777 == 0o640
    if os.geteuid() == 0:
        assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4321)


def test_a_failed_write_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "pod-map.json"
    path.write_text("old")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_atomically(path, "new")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pod-map.json"]


def test_wait_until_returns_the_first_truthy_result() -> None:
    answers = iter([None, 0, "", "ready", "later"])
    assert wait_until(lambda: next(answers), timeout=5, what="x", interval=0.001) == "ready"


def test_wait_until_names_what_it_waited_for_and_what_it_saw_last() -> None:
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        wait_until(lambda: False, timeout=0.3, what="the moon", last_seen=lambda: "clouds")
    assert str(info.value) == "gave up after 0.3s waiting for the moon (last seen: clouds)"
    assert isinstance(info.value, TimeoutError)
    assert time.monotonic() - started < 5  # bounded; a generous limit that only stops a hang


def test_wait_until_treats_listed_errors_as_not_yet_and_raises_others() -> None:
    calls: list[Exception | str] = [KeyError("a"), KeyError("b"), "done"]

    def check() -> str:
        value = calls.pop(0)
        if isinstance(value, Exception):
            raise value
        return value

    assert wait_until(check, timeout=5, what="x", interval=0.001, retry_on=(KeyError,)) == "done"
    with pytest.raises(WaitTimeout, match=r"last seen: KeyError: 'k'"):
        wait_until(lambda: {"j": 1}["k"], timeout=0.1, what="x", retry_on=(KeyError,))
    with pytest.raises(ZeroDivisionError):
        wait_until(lambda: 1 / 0, timeout=5, what="x", retry_on=(KeyError,))


def test_a_shared_deadline_bounds_several_waits() -> None:
    deadline = Deadline(0.2)
    with pytest.raises(WaitTimeout):
        wait_until(lambda: False, timeout=deadline, what="first", interval=0.05)
    assert deadline.expired
    checks = []
    with pytest.raises(WaitTimeout):
        wait_until(lambda: checks.append(1), timeout=deadline, what="second", interval=0.05)
    assert len(checks) == 1  # an expired deadline still checks once, never sleeps
