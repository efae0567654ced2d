"""Which slot moves run at the same time: never a master that gives and takes at once (its
epoch bump as a target would win back a slot it is giving away, and the slot's keys would be
dropped where they had just arrived)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clusterkit.core.model import MoveSlot
from clusterkit.core.waves import move_waves


def moving(slot: int, source: int, target: int) -> MoveSlot:
    return MoveSlot(
        ordinal=source,
        slot=slot,
        target=target,
        source_id=f"{source:040x}",
        target_id=f"{target:040x}",
        source_ip=f"10.0.0.{source + 1}",
        source_port=6379,
        target_ip=f"10.0.0.{target + 1}",
        target_port=6379,
    )


def test_a_scale_out_runs_every_pair_at_once() -> None:
    moves = [moving(s, s % 3, 3) for s in range(9)]
    assert [sorted(wave) for wave in move_waves(moves)] == [[(0, 3), (1, 3), (2, 3)]]


def test_a_master_that_takes_and_gives_does_one_after_the_other() -> None:
    """The open-slot shapes of tests/integration/test_open_slots.py: 0 -> 1 and 1 -> 2."""
    waves = move_waves([moving(4748, 0, 1), moving(8943, 1, 2), moving(9191, 2, 1)])
    assert [sorted(wave) for wave in waves] == [[(0, 1), (2, 1)], [(1, 2)]]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 5)).filter(lambda p: p[0] != p[1]),
        max_size=20,
    )
)
def test_waves_hold_every_move_once_and_no_master_on_both_sides(
    pairs: list[tuple[int, int]],
) -> None:
    moves = [moving(slot, source, target) for slot, (source, target) in enumerate(pairs)]
    waves = move_waves(moves)
    assert sorted(m.slot for wave in waves for group in wave.values() for m in group) == list(
        range(len(moves))
    )
    for wave in waves:
        assert all(m.ordinal == s and m.target == t for (s, t), g in wave.items() for m in g)
        assert not {s for s, _ in wave} & {t for _, t in wave}
