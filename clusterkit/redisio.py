"""Thin helpers to talk to one Redis node: connect without hidden retries, read text replies."""

from __future__ import annotations

from collections.abc import Sequence

import redis
from redis.backoff import NoBackoff
from redis.connection import Connection
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
        # No CLIENT SETINFO on connect: two round trips per connection, hundreds of connections.
        driver_info=None,
    )


def parse_info(text: str) -> dict[str, str]:
    """`field:value` lines of CLUSTER INFO (INFO replies are parsed by redis-py already)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            fields[key.strip()] = value.strip()
    return fields


Command = tuple[str | int, ...]
Reply = object
"""A reply as redis-py parses it without command callbacks: str, int, list, or the
ResponseError the node answered with."""


def scatter(
    calls: Sequence[tuple[redis.Redis, Sequence[Command]]],
) -> list[list[Reply] | Exception]:
    """Send every node its commands first, then read all the replies.

    Every node gets its commands within the same few milliseconds from one thread (as
    redis-cli's loop does), instead of a thread pool's worth at a time: on a forming cluster of
    hundreds of nodes, a command that arrives a second late arrives in the middle of the gossip
    storm and waits there. Per call the result is its replies in order (an error reply becomes a
    ResponseError in that place), or the exception that broke the connection.
    """
    sent: list[Connection | Exception] = []
    for client, commands in calls:
        pool = client.connection_pool
        connection: Connection | None = None
        try:
            connection = pool.get_connection()
            connection.send_packed_command(connection.pack_commands(commands))
            sent.append(connection)
        except (redis.RedisError, OSError) as exc:
            if connection is not None:
                connection.disconnect()
                pool.release(connection)
            sent.append(exc)
    results: list[list[Reply] | Exception] = []
    for (client, commands), outcome in zip(calls, sent, strict=True):
        if isinstance(outcome, Exception):
            results.append(outcome)
            continue
        replies: list[Reply] = []
        try:
            for _ in commands:
                try:
                    replies.append(outcome.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
            results.append(replies)
        except (redis.RedisError, OSError) as exc:
            outcome.disconnect()
            results.append(exc)
        finally:
            client.connection_pool.release(outcome)
    return results
