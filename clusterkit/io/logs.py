"""structlog set up once per process: JSON events, one per line, on stdout."""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
from collections.abc import Callable

import structlog


def configure(level: str = "INFO", stream: object = None) -> None:
    """JSON lines with timestamp and level, on stdout by default (Kubernetes collects it)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stdout),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )


def start_thread(
    target: Callable[[threading.Event], None], stop: threading.Event, name: str
) -> threading.Thread:
    """A daemon thread running `target(stop)` with the context bound so far (the pod's name):
    a new thread starts with empty contextvars, so its events would not say which pod."""
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(target, stop), name=name, daemon=True)
    thread.start()
    return thread
