"""How far a batch of slot moves has come, logged every few seconds from the moving threads."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger()

PROGRESS_SECONDS = 2.0


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
