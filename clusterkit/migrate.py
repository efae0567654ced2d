"""Move slots between masters with MIGRATE, as `redis-cli --cluster reshard` does, resumably:
every step may be repeated, and a crash at any point leaves at most open slots, which the next
round's plan closes (clusterkit.openslots). No key is ever dropped: a key that exists on both
sides is replaced only when both copies are byte for byte the same (DUMP), else KeyConflict.

Moves between different pairs of masters run at once (a few threads): a scale out has one target
and several sources, a scale in one source and several targets. One pair moves its slots one by
one.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import redis
import structlog

from clusterkit.keycopies import KeyConflict, MoveFailed, dumps
from clusterkit.model import MoveSlot
from clusterkit.naming import PodNaming
from clusterkit.redisio import Reply, connect, submit

log = structlog.get_logger()

BATCH_KEYS = 100
"""Keys per MIGRATE (redis-cli: 10); one round trip each way per batch."""
MIGRATE_TIMEOUT_MS = 60_000
"""MIGRATE's own I/O timeout towards the target, as redis-cli's default."""
KEY_SOCKET_SECONDS = MIGRATE_TIMEOUT_MS / 1000 + 10
"""Our socket waits longer than MIGRATE itself: a big key takes long, and its error says why."""
MOVE_THREADS = 4
PROGRESS_SECONDS = 2.0
ONLY_MASTERS = "Please use SETSLOT only with masters"
"""SETSLOT NODE to a master that gave away its last slot and became the target's replica."""


@dataclass
class Progress:
    """Slots and keys moved so far, logged every PROGRESS_SECONDS from any thread."""

    total: int
    """Slots to move in this batch."""
    slots: int = 0
    keys: int = 0
    started: float = field(default_factory=time.monotonic)
    logged: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, keys: int = 0, slots: int = 0) -> None:
        with self.lock:
            self.keys += keys
            self.slots += slots
            now = time.monotonic()
            if now - self.logged < PROGRESS_SECONDS:
                return
            self.logged = now
        log.info("slots_moving", **self.fields())

    def fields(self) -> dict[str, object]:
        seconds = time.monotonic() - self.started
        return {
            "slots_moved": self.slots,
            "slots_total": self.total,
            "keys_moved": self.keys,
            "keys_per_second": round(self.keys / seconds) if seconds > 0 else 0,
            "seconds": round(seconds, 3),
        }


def move_slots(
    moves: Sequence[MoveSlot],
    clients: dict[int, redis.Redis],
    naming: PodNaming,
    password: str | None,
) -> dict[MoveSlot, str]:
    """Carry out the moves: "done" or "failed" per move (a failed one is logged and left open).
    Raises KeyConflict, after the moves already running have ended, when one found a key with
    different values on both sides."""
    mover = Mover(clients, naming, password, Progress(len(moves)))
    by_pair: dict[tuple[int, int], list[MoveSlot]] = {}
    for move in moves:
        by_pair.setdefault((move.ordinal, move.target), []).append(move)
    try:
        with ThreadPoolExecutor(min(MOVE_THREADS, len(by_pair)) or 1, "move") as pool:
            # Each task runs in a copy of our context: the log fields bound by the caller.
            futures = [
                pool.submit(contextvars.copy_context().run, mover.run_all, group)
                for group in by_pair.values()
            ]
            for future in futures:
                future.result()
        failed = mover.announcements_failed()
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
        password: str | None,
        progress: Progress,
    ) -> None:
        self.clients = clients
        self.naming = naming
        self.password = password
        self.progress = progress
        self.outcomes: dict[MoveSlot, str] = {}
        self.conflicts: list[KeyConflict] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.key_clients: dict[tuple[str, int], redis.Redis] = {}
        self.announced: list[tuple[int, Future[list[Reply] | Exception]]] = []

    def key_client(self, ip: str, port: int) -> redis.Redis:
        """A bytes client with a long timeout (key names and DUMP payloads are binary)."""
        with self.lock:
            if (ip, port) not in self.key_clients:
                self.key_clients[ip, port] = connect(
                    ip, port, self.password, KEY_SOCKET_SECONDS, decode=False
                )
            return self.key_clients[ip, port]

    def close(self) -> None:
        for client in self.key_clients.values():
            client.close()

    def run_all(self, moves: Sequence[MoveSlot]) -> None:
        for move in moves:
            if self.stop.is_set():
                return
            outcome = self.run_one(move)
            with self.lock:
                self.outcomes[move] = outcome

    def run_one(self, move: MoveSlot) -> str:
        context = {
            "pod": self.naming.pod_name(move.ordinal),
            "slot": move.slot,
            "target": self.naming.pod_name(move.target),
        }
        started = time.monotonic()
        try:
            keys = self.move(move)
        except KeyConflict as conflict:
            log.error("key_conflict", keys=conflict.keys[:10], **context)
            with self.lock:
                self.conflicts.append(conflict)
            self.stop.set()
            return "failed"
        except (MoveFailed, redis.RedisError, OSError) as exc:
            log.warning("move_slot_failed", error=str(exc), handover=move.handover, **context)
            return "failed"
        self.progress.add(slots=1)
        log.info(
            "slot_moved",
            keys=keys,
            handover=move.handover,
            seconds=round(time.monotonic() - started, 3),
            **context,
        )
        return "done"

    def move(self, move: MoveSlot) -> int:
        """One slot, start to end; returns the keys moved."""
        source = self.key_client(move.source_ip, move.source_port)
        target = self.key_client(move.target_ip, move.target_port)
        slot = move.slot
        if move.handover:
            # Target first: once the source migrates, clients are sent (ASK) to the target.
            setslot(target, slot, "IMPORTING", move.source_id)
            setslot(source, slot, "MIGRATING", move.target_id)
        else:
            # The source does not own the slot: open it there (importing), so that MIGRATE runs
            # on the source instead of being redirected to the owner.
            setslot(source, slot, "IMPORTING", move.target_id)
        keys = self.migrate_keys(move, source, target)
        if move.handover:
            # The target first: a crash after this leaves the slot owned (redis#7116), and its
            # epoch bump makes the new owner win everywhere by gossip.
            setslot(target, slot, "NODE", move.target_id)
            setslot(source, slot, "NODE", move.target_id, accept=ONLY_MASTERS)
        else:
            setslot(source, slot, "STABLE")
            setslot(source, slot, "NODE", move.target_id, accept=ONLY_MASTERS)
        # The other masters learn the owner by gossip anyway (the target's epoch bump): telling
        # them directly only saves clients a redirect, so it does not hold up the next slot.
        announce = ("CLUSTER", "SETSLOT", slot, "NODE", move.target_id)
        sent = [(o, submit(self.clients[o], [announce])) for o in move.announce]
        with self.lock:
            self.announced.extend(sent)
        return keys

    def announcements_failed(self) -> list[str]:
        """Wait for every announcement; which ones Redis refused (other than ONLY_MASTERS)."""
        failed = []
        for ordinal, future in self.announced:
            result = future.result()
            reply = result if isinstance(result, Exception) else result[0]
            if isinstance(reply, Exception) and ONLY_MASTERS not in str(reply):
                failed.append(f"{self.naming.pod_name(ordinal)}: {reply}")
        return failed

    def migrate_keys(self, move: MoveSlot, source: redis.Redis, target: redis.Redis) -> int:
        """MIGRATE every key of the slot from source to target, a batch at a time."""
        auth: tuple[str, ...] = ("AUTH", self.password) if self.password else ()
        moved = 0
        previous: list[bytes] = []
        while True:
            keys = list(source.execute_command("CLUSTER", "GETKEYSINSLOT", move.slot, BATCH_KEYS))
            if not keys:
                return moved
            if keys == previous:
                raise MoveFailed(f"keys of slot {move.slot} stay on the source after MIGRATE")
            previous = keys
            migrate = ("MIGRATE", move.target_ip, move.target_port, "", 0, MIGRATE_TIMEOUT_MS)
            try:
                reply = source.execute_command(*migrate, *auth, "KEYS", *keys)
                count = 0 if reply in (b"NOKEY", "NOKEY") else len(keys)
            except redis.ResponseError as exc:
                if "BUSYKEY" not in str(exc):
                    raise MoveFailed(f"MIGRATE of slot {move.slot}: {exc}") from None
                # The keys not already on the target have moved; the rest move with REPLACE
                # only when both copies are the same.
                same, gone = self.same_on_both(move, source, target, keys)
                if same:
                    source.execute_command(*migrate, "REPLACE", *auth, "KEYS", *same)
                    log.info("identical_keys_replaced", slot=move.slot, keys=len(same))
                count = len(same) + gone
            moved += count
            self.progress.add(keys=count)
            if move.handover and count == len(keys) < BATCH_KEYS:
                # That was the last batch: a MIGRATING source creates no keys (it answers ASK
                # for a key it does not have), so asking again would only cost a round trip.
                return moved

    def same_on_both(
        self, move: MoveSlot, source: redis.Redis, target: redis.Redis, keys: list[bytes]
    ) -> tuple[list[bytes], int]:
        """(keys on both sides with equal values, keys no longer on the source); raises
        KeyConflict when a key has different values on the two sides."""
        mine, theirs = dumps(source, keys), dumps(target, keys)
        both = [(k, a, b) for k, a, b in zip(keys, mine, theirs, strict=True) if a and b]
        differ = [k for k, a, b in both if a != b]
        if differ:
            raise KeyConflict(
                move.slot,
                differ,
                f"{self.naming.pod_name(move.ordinal)} ({move.source_id})",
                f"{self.naming.pod_name(move.target)} ({move.target_id})",
            )
        return [k for k, _, _ in both], sum(1 for a in mine if a is None)


def setslot(client: redis.Redis, slot: int, *args: str, accept: str | None = None) -> None:
    """`CLUSTER SETSLOT slot args...`; an error reply other than `accept` stops the move."""
    try:
        client.execute_command("CLUSTER", "SETSLOT", slot, *args)
    except redis.ResponseError as exc:
        if accept is None or accept not in str(exc):
            raise MoveFailed(f"CLUSTER SETSLOT {slot} {' '.join(args)}: {exc}") from None
