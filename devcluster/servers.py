"""Which Redis-compatible server devcluster, the tests and the benchmarks run: `redis-server`
(Redis 7.x) by default, or `valkey-server` (Valkey 8) with REDIS_SERVER_BIN=valkey-server."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def server_bin() -> str:
    """REDIS_SERVER_BIN, default `redis-server`."""
    return os.environ.get("REDIS_SERVER_BIN") or "redis-server"


def cli_bin() -> str:
    """REDIS_CLI_BIN, default `redis-cli` (`valkey-cli` beside valkey-server)."""
    return os.environ.get("REDIS_CLI_BIN") or "redis-cli"


def server_marker() -> str:
    """What a running server's command line (its process title) contains."""
    return Path(server_bin()).name


def missing_server() -> str | None:
    """Why the server can't run here, or None when it is installed."""
    if shutil.which(server_bin()) is None:
        return (
            f"{server_bin()} not found: install Redis 7 (Debian/Ubuntu: apt-get install"
            " redis-server) or Valkey 8, or set REDIS_SERVER_BIN to the server binary"
        )
    return None


def server_version() -> str:
    """`Redis server v=7.0.15 ...` or `Valkey server v=8.0.1 ...`, first line of --version."""
    done = subprocess.run(
        [server_bin(), "--version"], capture_output=True, text=True, check=False, timeout=10
    )
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else "unknown"
