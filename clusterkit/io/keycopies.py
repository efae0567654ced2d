"""A slot's keys during a move: MIGRATE a batch at a time, and the two copies of a key compared
byte for byte (DUMP): a key that exists on both sides moves (MIGRATE ... REPLACE) only when both
are the same; different values are a KeyConflict, which is the user's decision."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import redis
import structlog

from clusterkit.core.model import MoveSlot
from clusterkit.io.redisio import Command, pipelined

log = structlog.get_logger()

BATCH_KEYS = 100
"""Keys per MIGRATE (redis-cli: 10); one round trip each way per batch."""
MIGRATE_TIMEOUT_MS = 60_000
"""MIGRATE's own I/O timeout towards the target, as redis-cli's default."""


class KeyConflict(Exception):
    """A key exists on both sides of a move with different values: which one is right is the
    user's decision. Both copies stay where they are, and the slot stays open."""

    def __init__(self, slot: int, keys: Sequence[bytes], source: str, target: str) -> None:
        self.slot = slot
        self.keys = [k.decode("utf-8", "backslashreplace") for k in keys]
        self.source = source
        self.target = target
        more = f" (and {len(keys) - 1} more keys)" if len(keys) > 1 else ""
        super().__init__(
            f"key {self.keys[0]!r}{more} of slot {slot} exists on {source} and on {target}"
            " with different values"
        )


class MoveFailed(Exception):
    """A reply that stops one move (the slot stays open for the next round); never holds the
    password, only what was asked of which node and the node's answer."""


def dumps(client: redis.Redis, keys: list[bytes]) -> list[bytes | None]:
    """DUMP of each key (None when absent). ASKING first: the node may be importing the slot."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("ASKING")
        pipe.execute_command("DUMP", key)
    replies = pipe.execute(raise_on_error=False)[1::2]
    values: list[bytes | None] = []
    for reply in replies:
        # A migrating source answers ASK for a key it no longer has: absent here.
        if isinstance(reply, redis.exceptions.AskError):
            values.append(None)
        elif isinstance(reply, Exception):
            raise MoveFailed(f"DUMP: {reply}")
        else:
            values.append(reply if isinstance(reply, bytes) else None)
    return values


def migrate_command(move: MoveSlot, auth: Sequence[str], keys: Sequence[bytes]) -> Command:
    return (
        "MIGRATE",
        move.target_ip,
        move.target_port,
        "",
        0,
        MIGRATE_TIMEOUT_MS,
        *auth,
        "KEYS",
        *keys,
    )


def migrate_whole_slots(
    source: redis.Redis, listed: Mapping[MoveSlot, list[bytes]], auth: Sequence[str]
) -> dict[MoveSlot, int]:
    """Slot -> keys moved, for the slots whose every key one MIGRATE moved: one pipeline for
    all of them (the source runs them one after another, as if sent one by one). `listed`
    holds slots whose GETKEYSINSLOT reply was the whole slot (fewer keys than BATCH_KEYS).
    A slot left out (an error such as BUSYKEY, NOKEY, a broken connection) is the caller's to
    move the careful way, slot by slot."""
    moves = [m for m, keys in listed.items() if 0 < len(keys) < BATCH_KEYS]
    if not moves:
        return {}
    replies = pipelined(source, [migrate_command(m, auth, listed[m]) for m in moves])
    if isinstance(replies, Exception):
        return {}
    return {
        move: len(listed[move])
        for move, reply in zip(moves, replies, strict=True)
        if reply in (b"OK", "OK", True)
    }


def migrate_keys(
    move: MoveSlot,
    source: redis.Redis,
    target: redis.Redis,
    *,
    auth: Sequence[str],
    sides: tuple[str, str],
    on_moved: Callable[[int], None],
    listed: list[bytes] | None = None,
) -> int:
    """MIGRATE every key of the slot from source to target, a batch at a time (`auth`: the
    AUTH2 arguments, `sides`: how a KeyConflict names source and target, `on_moved`: told each
    batch's count); `listed` is the slot's first GETKEYSINSLOT reply when already asked."""
    moved = 0
    previous: list[bytes] = []
    while True:
        if listed is None:
            keys = list(source.execute_command("CLUSTER", "GETKEYSINSLOT", move.slot, BATCH_KEYS))
        else:
            keys, listed = listed, None
        if not keys:
            return moved
        if keys == previous:
            raise MoveFailed(f"keys of slot {move.slot} stay on the source after MIGRATE")
        previous = keys
        try:
            reply = source.execute_command(*migrate_command(move, auth, keys))
            count = 0 if reply in (b"NOKEY", "NOKEY") else len(keys)
        except redis.ResponseError as exc:
            if "BUSYKEY" not in str(exc):
                raise MoveFailed(f"MIGRATE of slot {move.slot}: {exc}") from None
            # The keys not already on the target have moved; the rest move with REPLACE
            # only when both copies are the same.
            same, gone = same_on_both(move.slot, source, target, keys, sides)
            if same:
                source.execute_command(*migrate_command(move, ("REPLACE", *auth), same))
                log.info("identical_keys_replaced", slot=move.slot, keys=len(same))
            count = len(same) + gone
        moved += count
        on_moved(count)
        if move.handover and count == len(keys) < BATCH_KEYS:
            # That was the last batch: a MIGRATING source creates no keys (it answers ASK
            # for a key it does not have), so asking again would only cost a round trip.
            return moved


def same_on_both(
    slot: int,
    source: redis.Redis,
    target: redis.Redis,
    keys: list[bytes],
    sides: tuple[str, str],
) -> tuple[list[bytes], int]:
    """(keys on both sides with equal values, keys no longer on the source); raises
    KeyConflict when a key has different values on the two sides."""
    mine, theirs = dumps(source, keys), dumps(target, keys)
    both = [(k, a, b) for k, a, b in zip(keys, mine, theirs, strict=True) if a and b]
    differ = [k for k, a, b in both if a != b]
    if differ:
        raise KeyConflict(slot, differ, *sides)
    return [k for k, _, _ in both], sum(1 for a in mine if a is None)
