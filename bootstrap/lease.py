"""Two Jobs never change the cluster at once, and the one that registered last wins.

Two keys in one slot of the cluster itself (no Kubernetes API, no credentials beyond the Job's
ACL user, whose key rights reach only these two):
- GENERATION_KEY, an INCR counter: each Job takes the next number when it first sees the
  cluster serve slots. A higher number than one's own means a later Job with newer settings.
- HOLDER_KEY, the generation allowed to act, held with a TTL that a heartbeat renews.

A Job acts only while it holds the key, and checks the counter before every step batch and
every chunk of slot moves. A superseded Job finishes the chunk in flight (so at most that chunk
is left open, which the next plan closes), releases the key and ends with exit code 0: a failing
Job would be retried by Kubernetes and take the lead back with the older settings. A Job that
died keeps the key at most HOLD_MS. Before any slot is served there is nothing to move and no
place for the keys: formation runs without them (logged), and so does a Job while the key's
slot is not served (a lost shard must still be repairable).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import redis
import structlog

from clusterkit.core.naming import PodNaming
from clusterkit.core.redisconf import LEASE_KEY_PREFIX

log = structlog.get_logger()

GENERATION_KEY = LEASE_KEY_PREFIX + "generation"
HOLDER_KEY = LEASE_KEY_PREFIX + "holder"
HOLD_MS = 20_000
"""How long a Job that stopped renewing (killed, cut off) keeps the others waiting."""
HEARTBEAT_SECONDS = 5.0
GENERATION_TTL_MS = 7 * 24 * 3600 * 1000
"""The counter outlives any Job run (TIMEOUT_SECONDS), then goes: no key stays forever."""
MAX_REDIRECTS = 5


class Superseded(Exception):
    """A Job registered after this one: its settings win, this one stops."""

    def __init__(self, mine: int, latest: int) -> None:
        super().__init__(f"Job generation {latest} registered after this one ({mine})")
        self.mine = mine
        self.latest = latest


class NotServed(Exception):
    """The lease's slot has no serving owner (no slot assigned yet, or the cluster is down)."""


class JobLease:
    """This Job's generation and whether it holds the right to act."""

    def __init__(
        self, clients: dict[int, redis.Redis], addresses: dict[int, str], naming: PodNaming
    ) -> None:
        self.clients = clients
        self.addresses = addresses
        self.naming = naming
        self.generation = 0
        """INCR's answer (from 1); 0 until registered."""
        self.held = False
        self.unleased = False
        """Acting without the lease because its slot is not served (logged once)."""
        self.acting = 0
        self.superseded: Superseded | None = None
        self.lock = threading.RLock()
        self.quit = threading.Event()
        self.heartbeat: threading.Thread | None = None
        self.route = min(clients)

    def reach(self, clients: dict[int, redis.Redis], addresses: dict[int, str]) -> None:
        """The pods this round observed (leaving ones too: the lease's slot may be on one)."""
        with self.lock:
            self.clients, self.addresses = clients, addresses

    def send(self, *command: str | int) -> object:
        """One command on the node serving the lease's slot, following MOVED and ASK; a node
        that does not answer sends us to the next one."""
        ordinal, asking = self.route, False
        for _ in range(MAX_REDIRECTS):
            client = self.clients.get(ordinal) or self.clients[min(self.clients)]
            try:
                if not asking:
                    reply: object = client.execute_command(*command)
                else:
                    pipe = client.pipeline(transaction=False)
                    pipe.execute_command("ASKING")
                    pipe.execute_command(*command)
                    reply = pipe.execute()[1]
                self.route = ordinal
                return reply
            except redis.exceptions.AskError as redirect:  # MovedError is one too
                asking = not isinstance(redirect, redis.exceptions.MovedError)
                ordinal = self.ordinal_at(str(redirect.host))
            except redis.exceptions.ClusterDownError as exc:
                raise NotServed(str(exc)) from None
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                later = sorted(o for o in self.clients if o > ordinal)
                ordinal, asking = (later or sorted(self.clients))[0], False
        raise redis.ConnectionError(f"no node answered {command[0]} {command[1]}")

    def ordinal_at(self, host: str) -> int:
        for ordinal, ip in self.addresses.items():
            if host in (ip, self.naming.pod_fqdn(ordinal)):
                return ordinal
        raise redis.ConnectionError(f"redirected to {host}, which is none of the pods")

    def may_act(self) -> bool:
        """Whether this round may carry out its plan: True while holding the lease (or while it
        cannot exist); False while an earlier Job finishes, or on the round that took it (the
        plan came from an observation made before: observe again). Raises Superseded."""
        with self.lock:
            if self.superseded:
                raise self.superseded
            try:
                if not self.generation:
                    self.register()
                if self.held:
                    return self.check()
                return self.acquire()
            except NotServed as exc:
                if not self.unleased:
                    log.info("job_lease_not_served", reason=str(exc), acting_alone=True)
                self.unleased = True
                return True
            except (redis.RedisError, OSError) as exc:
                log.info("job_lease_unreachable", error=str(exc))
                return self.held

    def announce(self) -> None:
        """Register as soon as the cluster serves the lease's slot, before this Job's plan may
        act: an earlier Job then stops at its next chunk instead of finishing its whole move
        while this one waits for its plan to stop refusing."""
        with self.lock:
            if self.generation or self.superseded:
                return
            # Not served yet or unreachable: may_act() tries again, and says why.
            with suppress(NotServed, redis.RedisError, OSError):
                self.register()

    def register(self) -> None:
        self.generation = int(str(self.send("INCR", GENERATION_KEY)))
        self.send("PEXPIRE", GENERATION_KEY, GENERATION_TTL_MS)
        log.info("job_registered", generation=self.generation)

    def acquire(self) -> bool:
        mine = self.generation
        self.check_latest()
        # SET NX then GET, not SET ... GET: redis-py parses SET's reply as a bool.
        taken = self.send("SET", HOLDER_KEY, mine, "NX", "PX", HOLD_MS)
        if not taken:
            holder = self.send("GET", HOLDER_KEY)
            if holder is not None and int(str(holder)) > mine:
                self.supersede(int(str(holder)))
            if holder is None or int(str(holder)) != mine:
                log.info("job_lease_waiting", holder=holder and int(str(holder)), generation=mine)
                return False  # held by an earlier Job, or just released: try next round
        self.held = True
        log.info("job_lease_taken", generation=mine, hold_ms=HOLD_MS)
        if self.heartbeat is None or not self.heartbeat.is_alive():
            self.heartbeat = threading.Thread(target=self.beat, name="lease", daemon=True)
            self.heartbeat.start()
        return False

    def check_latest(self) -> None:
        latest = int(str(self.send("GET", GENERATION_KEY) or 0))
        if latest > self.generation:
            self.supersede(latest)

    def supersede(self, latest: int) -> None:
        self.superseded = Superseded(self.generation, latest)
        log.info("job_superseded", generation=self.generation, latest=latest)
        if not self.acting:
            self.release()
        raise self.superseded

    def check(self) -> bool:
        """Still the latest and still holding (renewed); raises Superseded."""
        self.check_latest()
        holder = self.send("GET", HOLDER_KEY)
        if holder is not None and int(str(holder)) == self.generation:
            self.send("PEXPIRE", HOLDER_KEY, HOLD_MS)
            return True
        # It expired (we were cut off for HOLD_MS): take it again, then observe again.
        self.held = False
        log.warning("job_lease_lost", generation=self.generation, holder=holder)
        return self.acquire()

    def keep_going(self) -> bool:
        """For the step runner, before each batch and each chunk of moves: False once
        superseded (the step in flight ends, no new one starts)."""
        try:
            return self.may_act()
        except Superseded:
            return False

    @contextmanager
    def carrying_out(self) -> Iterator[None]:
        """Steps run inside: a supersession noticed by the heartbeat releases only after."""
        with self.lock:
            self.acting += 1
        try:
            yield
        finally:
            with self.lock:
                self.acting -= 1
                if self.superseded and not self.acting:
                    self.release()

    def beat(self) -> None:
        while not self.quit.wait(HEARTBEAT_SECONDS):
            with self.lock:
                if not self.held:
                    return
                try:
                    self.check()
                except Superseded:
                    return
                except (NotServed, redis.RedisError, OSError) as exc:
                    log.info("job_lease_unreachable", error=str(exc))

    def release(self) -> None:
        """Give the right to act back (at the end of the run, or once superseded)."""
        with self.lock:
            self.quit.set()
            if not self.held:
                return
            self.held = False
            try:
                holder = self.send("GET", HOLDER_KEY)
                if holder is not None and int(str(holder)) == self.generation:
                    self.send("DEL", HOLDER_KEY)
                log.info("job_lease_released", generation=self.generation)
            except (NotServed, redis.RedisError, OSError) as exc:
                log.warning("job_lease_release_failed", error=str(exc), expires_ms=HOLD_MS)
