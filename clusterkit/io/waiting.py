"""The one way to wait for something: poll a check until it holds or a deadline passes, then
fail with an error that says what was awaited, for how long, and what was seen last."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar, cast

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_result,
    wait_exponential,
)

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """A wait reached its deadline; the message names what it waited for and the last state."""

    def __init__(self, what: str, seconds: float, last: str) -> None:
        self.what = what
        self.seconds = seconds
        self.last = last
        seen = f" (last seen: {last})" if last else ""
        super().__init__(f"gave up after {seconds:.1f}s waiting for {what}{seen}")


@dataclass
class Deadline:
    """A point in time `seconds` after creation, read on the monotonic clock."""

    seconds: float
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return max(0.0, self.started + self.seconds - time.monotonic())

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


def wait_until(
    check: Callable[[], T],
    *,
    timeout: float | Deadline,
    what: str,
    interval: float = 0.05,
    max_interval: float | None = None,
    retry_on: tuple[type[BaseException], ...] = (),
    last_seen: Callable[[], str] | None = None,
) -> T:
    """The first truthy result of `check`, polled every `interval` seconds (growing by half
    each time up to `max_interval`, when given). An exception in `retry_on` counts as "not yet".
    Raises WaitTimeout at the deadline; `last_seen` describes the state for that message."""
    deadline = timeout if isinstance(timeout, Deadline) else Deadline(timeout)
    last_error: list[str] = [""]

    def attempt() -> T | None:
        try:
            result = check()
        except retry_on as exc:
            last_error[0] = f"{type(exc).__name__}: {exc}"
            return None
        last_error[0] = ""
        return result

    def give_up(state: RetryCallState) -> T:
        last = last_seen() if last_seen else last_error[0]
        raise WaitTimeout(what, deadline.seconds, last)

    backoff = wait_exponential(
        multiplier=interval, exp_base=1.5, min=interval, max=max_interval or interval
    )
    retrying: Retrying = Retrying(
        retry=retry_if_result(lambda result: not result),
        # Never sleep past the deadline: the last check runs right at it.
        wait=lambda state: min(backoff(state), deadline.remaining()),
        stop=lambda state: deadline.expired,
        retry_error_callback=give_up,
        reraise=True,
    )
    return cast(T, retrying(attempt))  # truthy: give_up raised otherwise
