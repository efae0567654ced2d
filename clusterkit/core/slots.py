"""Hash slots: ranges, the even split redis-cli uses, and compaction of slot sets."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SLOT_COUNT = 16384


def is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() alone also accepts '²', which int() rejects. (No regex:
    this runs for every field of every node line, 40,000 lines per round at 200 pods.)"""
    return text.isascii() and text.isdigit()


@dataclass(frozen=True, order=True)
class SlotRange:
    """An inclusive range of hash slots, as Redis writes it (`0-5460` or a single `42`)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end < SLOT_COUNT:
            raise ValueError(f"bad slot range {self.start}-{self.end}")

    @property
    def count(self) -> int:
        return self.end - self.start + 1

    def slots(self) -> range:
        return range(self.start, self.end + 1)

    def __str__(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start}-{self.end}"

    @classmethod
    def parse(cls, text: str) -> SlotRange:
        """Parse `a-b` or `a`; raises ValueError on anything else."""
        first, sep, last = text.partition("-")
        if not is_number(first) or (sep and not is_number(last)):
            raise ValueError(f"bad slot range {text!r}")
        return cls(int(first), int(last) if sep else int(first))


def even_split(masters: int) -> list[SlotRange]:
    """Split all slots over `masters` nodes as redis-cli does (3: 0-5460, 5461-10922, ...)."""
    if masters < 1:
        raise ValueError("need at least one master")
    per_node = SLOT_COUNT / masters
    ranges: list[SlotRange] = []
    first = 0
    cursor = 0.0
    for index in range(masters):
        last = round(cursor + per_node - 1)
        if last > SLOT_COUNT - 1 or index == masters - 1:
            last = SLOT_COUNT - 1
        ranges.append(SlotRange(first, last))
        first = last + 1
        cursor += per_node
    return ranges


def compact(slots: Iterable[int]) -> list[SlotRange]:
    """Turn a set of slots into the fewest sorted ranges."""
    ranges: list[SlotRange] = []
    start = prev = -2
    ordered = sorted(set(slots))
    if ordered and not (ordered[0] >= 0 and ordered[-1] < SLOT_COUNT):
        raise ValueError(f"bad slot range: slots must lie in 0..{SLOT_COUNT - 1}")
    for slot in ordered:
        if slot != prev + 1:
            if start >= 0:
                ranges.append(SlotRange(start, prev))
            start = slot
        prev = slot
    if start >= 0:
        ranges.append(SlotRange(start, prev))
    return ranges


def format_ranges(ranges: Iterable[SlotRange]) -> str:
    """`0-5460,5461` style text for logs and tables."""
    return ",".join(str(r) for r in ranges) or "-"
