"""Where do the peers this node can't reach live now? Asked concurrently and within a time box,
so that unreachable peers never hold up the sidecar's loop (whose turning is its liveness): a
hung peer accepts the connection and never answers, and asking a third of a big cluster one
after the other took longer than the liveness threshold. A peer whose answer was slow is asked
less and less often; a quick "no" (no DNS record yet, connection refused) costs nothing and is
asked again next turn, so a restarted pod is met as soon as it is back."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

LOCATE_THREADS = 16
BUDGET_SECONDS = 2.0
"""How long one turn waits for answers; the rest are collected on a later turn."""
SLOW_SECONDS = 0.5
"""An attempt that took this long (a timeout, not a refusal) backs its peer off."""
BACKOFF_FIRST_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 60.0

Locate = Callable[[str, str], "str | None"]


@dataclass
class Backoff:
    slow_failures: int = 0
    next_try: float = 0.0


@dataclass(frozen=True)
class Attempt:
    ip: str | None
    seconds: float


class PeerLocator:
    """Locates peers by (pod FQDN, node id) with `locate`, as core.addresses.plan_meets asks."""

    def __init__(self, locate: Locate, on_slow: Callable[[], None] | None = None) -> None:
        self.locate = locate
        self.on_slow = on_slow
        self.pool = ThreadPoolExecutor(LOCATE_THREADS, thread_name_prefix="locate")
        self.running: dict[str, Future[Attempt]] = {}
        self.backoff: dict[str, Backoff] = {}

    def timed(self, fqdn: str, node_id: str) -> Attempt:
        started = time.monotonic()
        try:
            ip = self.locate(fqdn, node_id)
        except Exception:  # any failure of one peer is "not found" for this turn, never fatal
            ip = None
        return Attempt(ip, time.monotonic() - started)

    def locate_all(
        self, peers: Sequence[tuple[str, str]], budget: float = BUDGET_SECONDS
    ) -> dict[str, str]:
        """node id -> address, for the peers (pod FQDN, node id) located within `budget`."""
        now = time.monotonic()
        wanted = {node_id for _, node_id in peers}
        for node_id in set(self.backoff) - wanted:
            del self.backoff[node_id]  # healed, or gone: start afresh if it fails again
        for fqdn, node_id in peers:
            due = self.backoff.get(node_id, Backoff()).next_try <= now
            if due and node_id not in self.running:
                self.running[node_id] = self.pool.submit(self.timed, fqdn, node_id)
        if self.running:
            wait(list(self.running.values()), timeout=budget)
        found: dict[str, str] = {}
        for node_id, future in list(self.running.items()):
            if not future.done():
                continue
            del self.running[node_id]
            attempt = future.result()
            if attempt.ip is not None:
                self.backoff.pop(node_id, None)
                if node_id in wanted:
                    found[node_id] = attempt.ip
            elif attempt.seconds >= SLOW_SECONDS:
                self.back_off(node_id)
        return found

    def back_off(self, node_id: str) -> None:
        state = self.backoff.setdefault(node_id, Backoff())
        state.slow_failures += 1
        delay = min(BACKOFF_FIRST_SECONDS * 2 ** (state.slow_failures - 1), BACKOFF_MAX_SECONDS)
        state.next_try = time.monotonic() + delay
        if self.on_slow:
            self.on_slow()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
