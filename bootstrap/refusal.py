"""A refusal stands only once it lasts: a moment of unsafe-looking state is often someone
else's step in flight."""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from bootstrap.errors import RefusedUnsafe
from clusterkit.core.reasons import Reason
from clusterkit.io.waiting import Deadline

log = structlog.get_logger()

REFUSAL_CONFIRM_SECONDS = 3.0
"""A refusal stands only after this long of observations that all refuse: a second Job moving
the same slots, or gossip still spreading a change, shows states for a moment (a slot open on
a node that no longer owns it) that are unsafe only when they last."""


@dataclass
class Refusal:
    """Since when every observation made the plan refuse (None: the last one did not)."""

    since: float | None = None

    def pending(self, reason: Reason | None, *, acted: bool, deadline: Deadline) -> bool:
        """Whether to observe again before refusing; raises RefusedUnsafe once it stands."""
        now = time.monotonic()
        if reason is None:
            if self.since is not None:
                log.info("refusal_withdrawn")
            self.since = None
            return False
        if self.since is None:
            self.since = now
            log.info(
                "refusal_pending",
                reason=reason.sentence,
                kind=reason.kind,
                confirm_seconds=REFUSAL_CONFIRM_SECONDS,
            )
        if now - self.since < REFUSAL_CONFIRM_SECONDS and not deadline.expired:
            return True
        if acted:
            # Our own steps can't make a cluster unsafe; a change by someone else can.
            log.error("refused_mid_run", reason=reason.sentence, kind=reason.kind)
        raise RefusedUnsafe(reason.sentence + "; nothing was changed" * (not acted))
