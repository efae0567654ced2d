"""Find the pods: wait for every pod's DNS record, then for every Redis to answer PING."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import dns.resolver
import redis
import structlog

from bootstrap.errors import AuthFailed, DnsTimeout, NodesTimeout, TlsFailed
from bootstrap.settings import Settings
from clusterkit.io.dnsio import resolve_first
from clusterkit.io.pingreply import classify_ping_failure
from clusterkit.io.redisio import Reply, scatter
from clusterkit.io.waiting import Deadline, WaitTimeout, wait_until

log = structlog.get_logger()

DNS_PARALLEL = 32
"""DNS queries in flight at once."""


def retry_until(deadline: Deadline, what: str, step: Callable[[], list[str]]) -> list[str]:
    """Call `step` (returns what is still missing) with capped backoff until nothing is missing
    or the deadline passes; returns what was missing last."""
    missing: list[str] = []

    def attempt() -> bool:
        missing[:] = step()
        return not missing

    with contextlib.suppress(WaitTimeout):
        wait_until(attempt, timeout=deadline, what=what, interval=0.05, max_interval=1.0)
    return missing


def wait_for_dns(
    settings: Settings, resolver: dns.resolver.Resolver, deadline: Deadline
) -> dict[int, str]:
    """Resolve every pod's FQDN; returns ordinal -> address. Raises DnsTimeout at the deadline."""
    naming = settings.cluster.naming
    found: dict[int, str] = {}

    def attempt() -> list[str]:
        missing = [i for i in range(settings.cluster_size) if i not in found]
        with ThreadPoolExecutor(max_workers=min(DNS_PARALLEL, len(missing) or 1)) as pool:
            answers = pool.map(lambda i: resolve_first(resolver, naming.pod_fqdn(i)), missing)
            for ordinal, address in zip(missing, answers, strict=True):
                if address:
                    found[ordinal] = address
        still = [naming.pod_name(i) for i in range(settings.cluster_size) if i not in found]
        log.info(
            "dns_progress",
            resolved=len(found),
            total=settings.cluster_size,
            missing=still[:10],
            more_missing=max(0, len(still) - 10),
        )
        return still

    missing = retry_until(deadline, "every pod's DNS record", attempt)
    if missing:
        raise DnsTimeout(
            f"after {deadline.seconds:.0f}s these pods still have no DNS record: "
            f"{', '.join(missing)} (as {naming.pod_fqdn(0).replace('-0.', '-N.', 1)})."
            " Check that the pods exist (kubectl get pods), that the headless Service has"
            " publishNotReadyAddresses: true, and that STATEFULSET_NAME/HEADLESS_SERVICE/NAMESPACE"
            " match; then rerun the Job"
        )
    return found


def ping_problem(result: list[Reply] | Exception, server_name: str) -> str | None:
    """None when the node answered PING; a short reason otherwise. Raises AuthFailed, and
    TlsFailed when the TLS handshake failed in a way no retry fixes."""
    reply = result if isinstance(result, Exception) else result[0]
    if not isinstance(reply, Exception):
        return None
    failure = classify_ping_failure(reply, server_name)
    if failure.kind == "tls":
        raise TlsFailed(f"{failure.reason}; then rerun the Job")
    if failure.kind == "auth":
        raise AuthFailed(failure.text)
    return failure.text


def wait_for_ping(
    pods: dict[int, str], clients: dict[int, redis.Redis], settings: Settings, deadline: Deadline
) -> None:
    """Wait until every node answers PING. AuthFailed at once on a wrong or missing password."""
    naming = settings.cluster.naming
    answered: set[int] = set()
    problems: dict[int, str] = {}

    def attempt() -> list[str]:
        waiting = [i for i in pods if i not in answered]
        results = scatter([(clients[i], [("PING",)]) for i in waiting])
        for ordinal, result in zip(waiting, results, strict=True):
            problem = ping_problem(result, naming.pod_fqdn(ordinal))
            if problem is None:
                answered.add(ordinal)
                problems.pop(ordinal, None)
            else:
                problems[ordinal] = problem
        still = [naming.pod_name(i) for i in pods if i not in answered]
        log.info("ping_progress", answering=len(answered), total=len(pods), waiting=still[:10])
        return still

    try:
        missing = retry_until(deadline, "every node to answer PING", attempt)
    except AuthFailed as exc:
        raise AuthFailed(
            f"Redis refused {settings.cluster.read_access().who} ({exc}). Check that"
            " REDIS_PASSWORD_FILE holds that user's password from the same Secret the sidecars"
            " read (REDIS_USER names the user), then rerun the Job"
        ) from None
    if missing:
        detail = "; ".join(
            f"{naming.pod_name(i)}: {problems.get(i, '?')}" for i in sorted(problems)[:5]
        )
        raise NodesTimeout(
            f"after {deadline.seconds:.0f}s these pods resolve but Redis does not answer on port"
            f" {settings.cluster.redis_port}: {', '.join(missing)} ({detail}). Check the pods'"
            " logs and REDIS_PORT, then rerun the Job"
        )
