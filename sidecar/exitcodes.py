"""Exit codes of `python -m sidecar` and `python -m sidecar fix-nodes-conf` (docs/operations.md)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    UNEXPECTED = 1
    BAD_SETTINGS = 2
    """A setting is missing or malformed; the message names it."""
    CORRUPT_NODES_CONF = 3
    """fix-nodes-conf: the file does not parse; it was left untouched."""
    REDIS_UNREACHABLE = 4
    """status: this pod's Redis did not answer CLUSTER NODES (or its credentials are unusable)."""
