"""Thin helpers to talk to one Redis node: connect without hidden retries, read text replies."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# Replies that mean "alive but busy" rather than "broken".
BUSY_PREFIXES = ("LOADING", "MASTERDOWN", "BUSY")


def connect(ip: str, port: int, password: str | None, timeout: float = 2.0) -> redis.Redis:
    """A client that fails fast: our own loops decide when to retry, not redis-py's defaults."""
    return redis.Redis(
        host=ip,
        port=port,
        password=password,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def parse_info(text: str) -> dict[str, str]:
    """`field:value` lines of CLUSTER INFO (INFO replies are parsed by redis-py already)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            fields[key.strip()] = value.strip()
    return fields
