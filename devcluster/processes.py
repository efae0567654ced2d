"""Start and stop the devcluster's real processes: redis-server per pod, and the DNS server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import redis

from clusterkit.io.access import Access
from clusterkit.io.httpget import http_get
from clusterkit.io.redisio import connect
from clusterkit.io.waiting import Deadline, WaitTimeout, wait_until
from devcluster.servers import server_bin, server_marker


def alive(pid: int | None, marker: str) -> bool:
    """The pid runs and is still ours (its command line names `marker`), not a reused pid."""
    if pid is None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return marker.encode() in cmdline


def stop(pid: int | None, marker: str, grace_seconds: float = 10.0) -> None:
    """SIGTERM (Redis fsyncs its AOF and exits, as on a pod deletion), then SIGKILL after grace."""
    if pid is None or not alive(pid, marker):
        return
    os.kill(pid, signal.SIGTERM)

    def exited() -> bool:
        reap(pid)
        return not alive(pid, marker)

    try:
        wait_until(exited, timeout=grace_seconds, what=f"pid {pid} to exit", interval=0.02)
    except WaitTimeout:
        with contextlib.suppress(ProcessLookupError):  # it exited after the last look
            os.kill(pid, signal.SIGKILL)
        wait_until(exited, timeout=5.0, what=f"pid {pid} to die after SIGKILL", interval=0.02)


def kill(pid: int | None, marker: str) -> None:
    """SIGKILL, as when a machine dies or a container is killed: Redis saves nothing, no hook
    runs. Returns once the process is gone."""
    if pid is None or not alive(pid, marker):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)

    def exited() -> bool:
        reap(pid)
        return not alive(pid, marker)

    wait_until(exited, timeout=5.0, what=f"pid {pid} to die after SIGKILL", interval=0.02)


def reap(pid: int) -> None:
    """Collect our own exited children so they don't linger as zombies."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def write_pod_config(
    path: Path,
    *,
    ip: str,
    port: int,
    data_dir: Path,
    auth_conf: Path,
    announce_hostname: str,
    redis_conf: Path,
) -> None:
    """The rendered redis.conf (the ConfigMap's, unchanged), plus what the StatefulSet adds per
    pod (the include the sidecar wrote, the announced hostname), plus the loopback binding
    devcluster needs
    (bind-source-addr: else all bus traffic comes from 127.0.0.1)."""
    lines = [
        f"include {redis_conf}",
        f"dir {data_dir}",
        f"port {port}",
        f"bind {ip}",
        f"bind-source-addr {ip}",
        f"include {auth_conf}",
        f"cluster-announce-hostname {announce_hostname}",
        f"logfile {path.parent / 'redis.log'}",
        "daemonize no",
    ]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def start_redis(config: Path) -> int:
    data_dir = config.parent / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [server_bin(), str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return process.pid


def wait_for_redis(
    ip: str, port: int, access: Access, *, server_name: str, pid: int, timeout: float = 15.0
) -> None:
    """Until the server answers (LOADING counts: it is up). Raises if it died or never answers."""
    client = connect(ip, port, access, timeout=0.5, server_name=server_name)

    def answers() -> bool:
        if not alive(pid, server_marker()):
            raise RuntimeError(f"{server_bin()} on {ip}:{port} exited; see its redis.log")
        with contextlib.suppress(redis.BusyLoadingError):  # up, loading its data
            client.ping()
        return True

    wait_until(
        answers,
        timeout=timeout,
        what=f"{server_bin()} on {ip}:{port} to answer",
        interval=0.02,
        retry_on=(redis.ConnectionError, redis.TimeoutError),
    )


def start_dns(ip: str, port: int, zone_file: Path, log_file: Path, timeout: float = 10.0) -> int:
    ready = zone_file.with_suffix(".ready")
    ready.unlink(missing_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devcluster.dnsserver",
                "--bind",
                ip,
                "--port",
                str(port),
                "--zone",
                str(zone_file),
                "--ready-file",
                str(ready),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    with contextlib.suppress(WaitTimeout):
        wait_until(
            lambda: ready.exists() or process.poll() is not None,
            timeout=timeout,
            what="the DNS server",
            interval=0.02,
        )
    if not ready.exists():
        process.kill()
        raise RuntimeError(f"the DNS server did not start on {ip}:{port}; see {log_file}")
    return process.pid


def start_sidecar(command: Sequence[str], env: dict[str, str], log_file: Path) -> int:
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            list(command),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    return process.pid


def wait_started(url: str, pid: int, timeout: float = 20.0) -> tuple[bool, str]:
    """Poll a startup probe like the kubelet does: (True, _) on 200, (False, reason) on 500, on
    the sidecar's exit, or after `timeout`."""
    verdict: list[tuple[bool, str]] = []

    def decided() -> bool:
        status, body = http_get(url)
        if status in (200, 500):
            verdict.append((status == 200, body))
        elif not alive(pid, "sidecar"):
            verdict.append((False, "the sidecar exited; see sidecar.log"))
        return bool(verdict)

    try:
        wait_until(decided, timeout=Deadline(timeout), what=f"startup probe {url}", interval=0.05)
    except WaitTimeout:
        return False, f"startup probe not 200 after {timeout:.0f}s"
    return verdict[0]
