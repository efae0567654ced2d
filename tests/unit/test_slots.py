"""clusterkit.core.slots: slot ranges, redis-cli's even split, compaction."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusterkit.core.slots import SLOT_COUNT, SlotRange, compact, even_split, format_ranges


def test_slot_range_basics() -> None:
    r = SlotRange(10, 19)
    assert r.count == 10
    assert list(r.slots()) == list(range(10, 20))
    assert str(r) == "10-19"
    assert str(SlotRange(7, 7)) == "7"
    assert SlotRange(0, 16383).count == SLOT_COUNT
    assert sorted([SlotRange(5, 6), SlotRange(1, 9), SlotRange(1, 2)]) == [
        SlotRange(1, 2),
        SlotRange(1, 9),
        SlotRange(5, 6),
    ]


@pytest.mark.parametrize(("start", "end"), [(-1, 5), (5, 4), (0, 16384), (16384, 16384)])
def test_slot_range_rejects_bad_bounds(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="bad slot range"):
        SlotRange(start, end)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0-5460", SlotRange(0, 5460)),
        ("42", SlotRange(42, 42)),
        ("16383", SlotRange(16383, 16383)),
        ("0-16383", SlotRange(0, 16383)),
    ],
)
def test_parse(text: str, expected: SlotRange) -> None:
    assert SlotRange.parse(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-",
        "-5",
        "5-",
        "a",
        "1-b",
        "1-2-3",
        "5460-0",
        "16384",
        "0-16384",
        " 5",
        "5 ",
        "+5",
        "1.5",
        "[93->-abc]",
    ],
)
def test_parse_errors(text: str) -> None:
    with pytest.raises(ValueError, match="bad slot range"):
        SlotRange.parse(text)


@given(st.integers(0, 16383), st.integers(0, 16383))
def test_parse_inverts_str(a: int, b: int) -> None:
    r = SlotRange(min(a, b), max(a, b))
    assert SlotRange.parse(str(r)) == r


def test_even_split_of_three_like_redis_cli() -> None:
    assert even_split(3) == [SlotRange(0, 5460), SlotRange(5461, 10922), SlotRange(10923, 16383)]


def test_even_split_of_one_and_of_every_slot() -> None:
    assert even_split(1) == [SlotRange(0, 16383)]
    assert even_split(SLOT_COUNT) == [SlotRange(i, i) for i in range(SLOT_COUNT)]


@pytest.mark.parametrize("masters", [0, -3])
def test_even_split_needs_a_master(masters: int) -> None:
    with pytest.raises(ValueError, match="at least one master"):
        even_split(masters)


@given(st.integers(1, 500))
def test_even_split_covers_every_slot_once_evenly(masters: int) -> None:
    ranges = even_split(masters)
    assert len(ranges) == masters
    assert ranges[0].start == 0 and ranges[-1].end == SLOT_COUNT - 1
    assert all(a.end + 1 == b.start for a, b in itertools.pairwise(ranges))
    assert sum(r.count for r in ranges) == SLOT_COUNT
    sizes = {r.count for r in ranges}
    assert max(sizes) - min(sizes) <= 1
    assert min(sizes) == SLOT_COUNT // masters


@given(st.sets(st.integers(0, SLOT_COUNT - 1), max_size=300))
def test_compact_gives_the_fewest_sorted_ranges(slots: set[int]) -> None:
    ranges = compact(slots)
    assert [s for r in ranges for s in r.slots()] == sorted(slots)
    # Fewest: neighbouring ranges never touch, so none could be merged.
    assert all(a.end + 1 < b.start for a, b in itertools.pairwise(ranges))


def test_compact_examples() -> None:
    assert compact([]) == []
    assert compact([0]) == [SlotRange(0, 0)]
    assert compact([3, 1, 2, 2, 9, 16383, 10]) == [
        SlotRange(1, 3),
        SlotRange(9, 10),
        SlotRange(16383, 16383),
    ]
    assert compact(iter(range(16384))) == [SlotRange(0, 16383)]


def test_compact_rejects_slots_past_the_end() -> None:
    with pytest.raises(ValueError, match="bad slot range"):
        compact([16383, 16384])


def test_compact_rejects_negative_slots() -> None:
    with pytest.raises(ValueError, match="bad slot range"):
        compact([-1, 0, 1])


def test_format_ranges() -> None:
    assert format_ranges([SlotRange(0, 5460), SlotRange(9, 9)]) == "0-5460,9"
    assert format_ranges([]) == "-"
