"""structlog set up once per process: JSON events, one per line, on stdout."""

from __future__ import annotations

import logging
import sys

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
