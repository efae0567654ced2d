"""Move slots between masters with MIGRATE, as `redis-cli --cluster reshard` does, resumably:
every step may be repeated, and a crash at any point leaves at most open slots, which the next
round's plan closes (clusterkit.core.openslots). No key is ever dropped: a key that exists on both
sides is replaced only when both copies are byte for byte the same (DUMP), else KeyConflict.

Moves between different pairs of masters run at once (a few threads): a scale out has one target
and several sources, a scale in one source and several targets; never a master that gives and
takes at once (clusterkit.core.waves says why). One pair hands its slots over CHUNK_SLOTS at a time.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import redis
import structlog

from clusterkit.core.model import MoveSlot
from clusterkit.core.naming import PodNaming
from clusterkit.core.slots import compact, format_ranges
from clusterkit.core.waves import move_waves
from clusterkit.io.access import Access
from clusterkit.io.announce import OwnerAnnouncements
from clusterkit.io.keycopies import (
    BATCH_KEYS,
    MIGRATE_TIMEOUT_MS,
    KeyConflict,
    MoveFailed,
    migrate_keys,
    migrate_whole_slots,
)
from clusterkit.io.moveprogress import Progress
from clusterkit.io.redisio import PodConnector, pipelined
from clusterkit.io.setslot import ONLY_MASTERS, TURNED_REPLICA, setslot, setslots

log = structlog.get_logger()

KEY_SOCKET_SECONDS = MIGRATE_TIMEOUT_MS / 1000 + 10
"""Our socket waits longer than MIGRATE itself: a big key takes long, and its error says why."""
MOVE_THREADS = 4
"""Pairs of masters moving slots at once unless the caller says otherwise (MOVE_PARALLELISM)."""
CHUNK_SLOTS = 32
"""Handovers between one pair of masters done together, each step one pipeline for all: a crash
leaves at most this many slots open, which the next round closes."""


def move_slots(
    moves: Sequence[MoveSlot],
    clients: dict[int, redis.Redis],
    naming: PodNaming,
    access: Access | None,
    keep_going: Callable[[], bool] = lambda: True,
    *,
    may_move: Callable[[MoveSlot], bool] = lambda move: True,
    parallelism: int = MOVE_THREADS,
) -> dict[MoveSlot, str]:
    """Carry out the moves: "done" or "failed" per move (a failed one is logged and left open).
    Raises KeyConflict, after the moves already running have ended, when one found a key with
    different values on both sides. `keep_going` is asked before each chunk: once it says no,
    the chunks in flight end and no move starts (those get no outcome). `may_move` is asked
    before each chunk of one pair: once it says no, that pair's moves stop (no outcome)."""
    mover = Mover(clients, naming, access, Progress(len(moves)), keep_going, may_move=may_move)
    waves = move_waves(moves)
    try:
        threads = max(1, min(parallelism, max(map(len, waves), default=1)))
        with ThreadPoolExecutor(threads, "move") as pool:
            for wave in waves:
                # Each task runs in a copy of our context: the log fields bound by the caller.
                futures = [
                    pool.submit(contextvars.copy_context().run, mover.run_all, group)
                    for group in wave.values()
                ]
                for future in futures:
                    future.result()
        failed = mover.announcements.failed()
        if failed:
            log.warning("owner_announce_failed", count=len(failed), first=failed[:3])
    finally:
        mover.close()
    log.info("moves_done", **mover.progress.fields())
    if mover.conflicts:
        raise min(mover.conflicts, key=lambda c: c.slot)
    return mover.outcomes


class Mover:
    """The moves of one batch: connections for key work, outcomes, conflicts, progress."""

    def __init__(
        self,
        clients: dict[int, redis.Redis],
        naming: PodNaming,
        access: Access | None,
        progress: Progress,
        keep_going: Callable[[], bool] = lambda: True,
        *,
        may_move: Callable[[MoveSlot], bool] = lambda move: True,
    ) -> None:
        self.clients = clients
        self.keep_going = keep_going
        self.may_move = may_move
        self.naming = naming
        self.access = access
        self.progress = progress
        self.outcomes: dict[MoveSlot, str] = {}
        self.conflicts: list[KeyConflict] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.key_clients: dict[tuple[str, int], redis.Redis] = {}
        self.announcements = OwnerAnnouncements(clients, naming)

    def key_client(self, ip: str, port: int, ordinal: int) -> redis.Redis:
        """A bytes client with a long timeout (key names and DUMP payloads are binary)."""
        with self.lock:
            if (ip, port) not in self.key_clients:
                connector = PodConnector(self.naming, port, self.access, KEY_SOCKET_SECONDS)
                self.key_clients[ip, port] = connector.connect(ordinal, ip, decode=False)
            return self.key_clients[ip, port]

    def close(self) -> None:
        for client in self.key_clients.values():
            client.close()

    def run_all(self, moves: Sequence[MoveSlot]) -> None:
        """One pair's moves: handovers CHUNK_SLOTS at a time, the rest one by one."""
        handovers = [m for m in moves if m.handover]
        for start in range(0, len(handovers), CHUNK_SLOTS):
            if self.stopping() or not self.may_move(handovers[start]):
                return
            if not self.run_chunk(handovers[start : start + CHUNK_SLOTS]):
                # Not one slot of the chunk moved: the pair changed (a failover, a restart);
                # the caller observes again and plans anew instead of failing every slot left.
                log.info(
                    "pair_stopped",
                    left=len(handovers) - start,
                    **context(handovers[start], self.naming),
                )
                return
        for move in moves:
            if not move.handover:
                if self.stopping() or not self.may_move(move):
                    return
                self.record(move, self.run_one(move))

    def stopping(self) -> bool:
        """A key conflict stopped the batch, or the caller says stop (once: for all pairs)."""
        if not self.stop.is_set() and not self.keep_going():
            log.info("moves_stopped", **self.progress.fields())
            self.stop.set()
        return self.stop.is_set()

    def record(self, move: MoveSlot, outcome: str) -> None:
        with self.lock:
            self.outcomes[move] = outcome

    def run_chunk(self, chunk: Sequence[MoveSlot]) -> bool:
        """Hand several slots over from one source to one target, each step one pipeline for
        all of them and in the protocol's order: IMPORTING on the target, MIGRATING on the
        source, the keys slot by slot, NODE on the target, NODE on the source. Whether any
        slot moved."""
        started = time.monotonic()
        first = chunk[0]
        source = self.key_client(first.source_ip, first.source_port, first.ordinal)
        target = self.key_client(first.target_ip, first.target_port, first.target)
        failed: dict[MoveSlot, str] = {}
        live = setslots(target, chunk, "IMPORTING", failed, lambda m: m.source_id)
        live = setslots(source, live, "MIGRATING", failed, lambda m: m.target_id)
        listed = pipelined(source, [("CLUSTER", "GETKEYSINSLOT", m.slot, BATCH_KEYS) for m in live])
        replies = {
            move: listed if isinstance(listed, Exception) else listed[index]
            for index, move in enumerate(live)
        }
        # The slots whose keys one MIGRATE moves go in one pipeline; the others, and any the
        # pipeline did not move whole, go slot by slot (listed again: some keys may have moved).
        keys = migrate_whole_slots(
            source,
            {m: cast(list[bytes], r) for m, r in replies.items() if isinstance(r, list)},
            self.auth(),
        )
        self.progress.add(keys=sum(keys.values()))
        for move, reply in replies.items():
            if move in keys:
                continue
            try:
                if isinstance(reply, Exception):
                    raise MoveFailed(f"CLUSTER GETKEYSINSLOT {move.slot}: {reply}")
                listing = cast(list[bytes], reply)
                keys[move] = self.migrate_keys(
                    move, source, target, None if 0 < len(listing) < BATCH_KEYS else listing
                )
            except KeyConflict as conflict:
                self.conflict(move, conflict)
                failed[move] = "key conflict"
            except (MoveFailed, redis.RedisError, OSError) as exc:
                failed[move] = str(exc)
        # The target first: a crash after this leaves the slot owned (redis#7116), and its
        # epoch bump makes the new owner win everywhere by gossip.
        live = setslots(target, [m for m in live if m in keys], "NODE", failed, owner)
        # A source that gave its last slot away becomes the target's replica: it may refuse
        # (ONLY_MASTERS), or, on Valkey 8.0.1 (measured), end a SETSLOT blocked on its replicas
        # or close our connection as it turns; the target owns the slot already, and the next
        # round closes anything left open.
        live = setslots(source, live, "NODE", failed, owner, accept=TURNED_REPLICA, closed_ok=True)
        seconds = round(time.monotonic() - started, 3)
        self.announcements.send(live)
        for move in live:
            self.progress.add(slots=1)
            log.info(
                "slot_moved",
                keys=keys[move],
                handover=True,
                seconds=seconds,
                **context(move, self.naming),
            )
            self.record(move, "done")
        errors = {m: e for m, e in failed.items() if e != "key conflict"}
        if errors:
            # One event per chunk: a source that turned replica fails every slot the same way.
            log.warning(
                "move_slots_failed",
                slots=format_ranges(compact({m.slot for m in errors})),
                count=len(errors),
                error=next(iter(errors.values())),
                handover=True,
                **context(first, self.naming),
            )
        for move in failed:
            self.record(move, "failed")
        return bool(live)

    def conflict(self, move: MoveSlot, conflict: KeyConflict) -> None:
        log.error("key_conflict", keys=conflict.keys[:10], **context(move, self.naming))
        with self.lock:
            self.conflicts.append(conflict)
        self.stop.set()

    def run_one(self, move: MoveSlot) -> str:
        """A move of stray keys to the slot's owner (no handover), start to end."""
        started = time.monotonic()
        try:
            keys = self.move(move)
        except KeyConflict as conflict:
            self.conflict(move, conflict)
            return "failed"
        except (MoveFailed, redis.RedisError, OSError) as exc:
            log.warning(
                "move_slot_failed", error=str(exc), handover=False, **context(move, self.naming)
            )
            return "failed"
        self.progress.add(slots=1)
        seconds = round(time.monotonic() - started, 3)
        log.info(
            "slot_moved", keys=keys, handover=False, seconds=seconds, **context(move, self.naming)
        )
        return "done"

    def move(self, move: MoveSlot) -> int:
        """Stray keys of a slot the target owns: the slot is opened on the source (importing,
        so that MIGRATE runs there instead of being redirected to the owner), emptied, set
        STABLE and assigned to the target. Returns the keys moved."""
        source = self.key_client(move.source_ip, move.source_port, move.ordinal)
        target = self.key_client(move.target_ip, move.target_port, move.target)
        setslot(source, move.slot, "IMPORTING", move.target_id)
        keys = self.migrate_keys(move, source, target)
        setslot(source, move.slot, "STABLE")
        setslot(source, move.slot, "NODE", move.target_id, accept=ONLY_MASTERS)
        self.announcements.send([move])
        return keys

    def auth(self) -> tuple[str, ...]:
        return tuple(self.access.auth_args()) if self.access else ()

    def migrate_keys(
        self,
        move: MoveSlot,
        source: redis.Redis,
        target: redis.Redis,
        listed: list[bytes] | None = None,
    ) -> int:
        return migrate_keys(
            move,
            source,
            target,
            auth=self.auth(),
            sides=(
                f"{self.naming.pod_name(move.ordinal)} ({move.source_id})",
                f"{self.naming.pod_name(move.target)} ({move.target_id})",
            ),
            on_moved=lambda count: self.progress.add(keys=count),
            listed=listed,
        )


def context(move: MoveSlot, naming: PodNaming) -> dict[str, object]:
    return {
        "pod": naming.pod_name(move.ordinal),
        "slot": move.slot,
        "target": naming.pod_name(move.target),
    }


def owner(move: MoveSlot) -> str:
    return move.target_id
