"""CLUSTER SETSLOT for slot moves: one slot at a time, or many in one pipeline."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import redis

from clusterkit.core.model import MoveSlot
from clusterkit.io.keycopies import MoveFailed
from clusterkit.io.redisio import pipelined

ONLY_MASTERS = "Please use SETSLOT only with masters"
"""SETSLOT NODE to a master that gave away its last slot and became the target's replica."""
TURNED_REPLICA = (ONLY_MASTERS, "UNBLOCKED force unblock")
"""Replies of a source that became a replica while (or before) it was told the new owner."""


def setslots(
    client: redis.Redis,
    moves: Sequence[MoveSlot],
    state: str,
    failed: dict[MoveSlot, str],
    peer: Callable[[MoveSlot], str],
    *,
    accept: tuple[str, ...] = (),
    closed_ok: bool = False,
) -> list[MoveSlot]:
    """`CLUSTER SETSLOT slot state peer(move)` for every move in one pipeline; returns the moves
    it succeeded for (or failed with `accept`, or lost the connection with `closed_ok`), and
    notes the others in `failed`."""
    if not moves:
        return []
    replies = pipelined(client, [("CLUSTER", "SETSLOT", m.slot, state, peer(m)) for m in moves])
    if closed_ok and isinstance(replies, redis.ConnectionError):
        return list(moves)
    done: list[MoveSlot] = []
    for index, move in enumerate(moves):
        reply = replies if isinstance(replies, Exception) else replies[index]
        if isinstance(reply, Exception) and not any(marker in str(reply) for marker in accept):
            failed[move] = f"CLUSTER SETSLOT {move.slot} {state}: {reply}"
        else:
            done.append(move)
    return done


def setslot(client: redis.Redis, slot: int, *args: str, accept: str | None = None) -> None:
    """`CLUSTER SETSLOT slot args...`; an error reply other than `accept` stops the move."""
    try:
        client.execute_command("CLUSTER", "SETSLOT", slot, *args)
    except redis.ResponseError as exc:
        if accept is None or accept not in str(exc):
            raise MoveFailed(f"CLUSTER SETSLOT {slot} {' '.join(args)}: {exc}") from None
