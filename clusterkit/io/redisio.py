"""Thin helpers to talk to one Redis node: connect without hidden retries, read text replies."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis
import redis.connection
from redis.backoff import NoBackoff
from redis.retry import Retry

from clusterkit.core.naming import PodNaming
from clusterkit.io.access import NO_ACCESS, Access, TlsClient, TlsError

# Replies that mean "alive but busy" rather than "broken".
BUSY_PREFIXES = ("LOADING", "MASTERDOWN", "BUSY")


class TlsConnection(redis.connection.Connection):
    """A TLS connection to an address we resolved ourselves, whose certificate must name
    `server_name` (the pod's FQDN), with the client certificate Redis asks for."""

    def __init__(self, *, tls: TlsClient, server_name: str, **kwargs: Any) -> None:
        self.tls = tls
        self.server_name = server_name
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]  # redis-py is untyped here

    def _connect(self) -> socket.socket:
        sock: socket.socket = super()._connect()  # type: ignore[no-untyped-call]  # as above
        try:
            return self.tls.context().wrap_socket(sock, server_hostname=self.server_name)
        except BaseException:
            sock.close()
            raise


def connect(
    ip: str,
    port: int,
    access: Access | None,
    timeout: float = 2.0,
    *,
    decode: bool = True,
    server_name: str | None = None,
) -> redis.Redis:
    """A client that fails fast: our own loops decide when to retry, not redis-py's defaults.
    `decode=False` answers bytes: key names and DUMP payloads are binary. Over TLS the
    server's certificate must name `server_name` (required then: the pod's FQDN)."""
    access = access or NO_ACCESS
    kwargs: dict[str, Any] = {
        "host": ip,
        "port": port,
        "username": access.username,
        "password": access.password,
        "decode_responses": decode,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        # A password's bytes that are not UTF-8 are kept as surrogates (clusterkit.io.settings):
        # encoded back, Redis gets the file's bytes.
        "encoding_errors": "surrogateescape",
        # No CLIENT SETINFO on connect: two round trips per connection, hundreds of connections.
        "driver_info": None,
    }
    if access.tls is None:
        return redis.Redis(connection_pool=redis.ConnectionPool(**kwargs))
    if not server_name:
        raise TlsError(f"no name to check the certificate of {ip}:{port} against")
    pool = redis.ConnectionPool(
        connection_class=TlsConnection, tls=access.tls, server_name=server_name, **kwargs
    )
    return redis.Redis(connection_pool=pool)


@dataclass(frozen=True)
class PodConnector:
    """Clients to the StatefulSet's pods by ordinal: over TLS, the pod's FQDN is the name its
    certificate must carry. The one way the Job and the sidecar connect to a pod."""

    naming: PodNaming
    port: int
    access: Access | None
    timeout: float

    def connect(
        self, ordinal: int, ip: str, *, port: int | None = None, decode: bool = True
    ) -> redis.Redis:
        return connect(
            ip,
            port or self.port,
            self.access,
            self.timeout,
            decode=decode,
            server_name=self.naming.pod_fqdn(ordinal),
        )

    def connect_all(self, addresses: Mapping[int, str]) -> dict[int, redis.Redis]:
        return {ordinal: self.connect(ordinal, ip) for ordinal, ip in addresses.items()}


def parse_info(text: str) -> dict[str, str]:
    """`field:value` lines of CLUSTER INFO (INFO replies are parsed by redis-py already)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            fields[key.strip()] = value.strip()
    return fields


Command = tuple[str | int | bytes, ...]
Reply = object
"""A reply as redis-py parses it: str, int, bool (PING), dict (INFO), list, or the ResponseError
the node answered with."""

SCATTER_THREADS = 256
"""Nodes served at once: every node of a 200-pod cluster gets its commands in the same moment."""
_scatter_pool = ThreadPoolExecutor(max_workers=SCATTER_THREADS, thread_name_prefix="scatter")


def info_fields(reply: Reply) -> dict[str, str]:
    """Fields of an INFO or CLUSTER INFO reply, whether redis-py parsed it already or not."""
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    return parse_info(str(reply))


def pipelined(client: redis.Redis, commands: Sequence[Command]) -> list[Reply] | Exception:
    """One node's commands in one round trip; error replies stay in their places."""
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    try:
        return list(pipe.execute(raise_on_error=False))
    except (redis.RedisError, OSError) as exc:
        return exc
    finally:
        pipe.reset()


def scatter(
    calls: Sequence[tuple[redis.Redis, Sequence[Command]]],
) -> list[list[Reply] | Exception]:
    """Send every node its commands (one pipeline each, all at once), then collect the replies.

    Every node gets its commands within the same few milliseconds, as redis-cli's loop does,
    instead of one node after another: on a forming cluster of hundreds of nodes, a command
    that arrives a second late arrives in the middle of the gossip storm and waits there. Per
    call the result is its replies in order, or the exception that broke the connection.
    """
    if len(calls) == 1:
        return [pipelined(*calls[0])]
    futures = [submit(client, commands) for client, commands in calls]
    return [future.result() for future in futures]


def submit(client: redis.Redis, commands: Sequence[Command]) -> Future[list[Reply] | Exception]:
    """One node's pipeline, started now; for callers that must not wait on the slowest node."""
    return _scatter_pool.submit(pipelined, client, commands)
