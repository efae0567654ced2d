"""The preStop handover, asked for from inside the pod only. The redis container's preStop hook
(`sh`, as in the official Redis image: no curl needed) writes a request file into an in-memory
volume that only this pod's containers mount, and waits for the answer file; this thread sees
the request, runs the handover and writes the answer. No network client, whatever the
NetworkPolicy lets reach the sidecar's port, can make a master fail over."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from pathlib import Path

import structlog

from clusterkit.io.atomicfile import write_atomically
from clusterkit.io.logs import start_thread

log = structlog.get_logger()

REQUEST = "request"
"""Written by the hook (manifests/statefulset.yaml) to ask for the handover."""
ANSWER = "done"
"""Written here once the handover ended: its outcome as JSON. The hook waits for it."""
POLL_SECONDS = 0.1


class PrestopWatch:
    """Watches `directory` for the hook's request; `prestop` does the handover."""

    def __init__(self, directory: Path, prestop: Callable[[], dict[str, object]]) -> None:
        self.directory = directory
        self.prestop = prestop

    def check(self) -> bool:
        """Run the handover if the hook asked for it; whether it did."""
        request = self.directory / REQUEST
        if not request.exists():
            return False
        with contextlib.suppress(FileNotFoundError):
            request.unlink()
        result = self.prestop()
        write_atomically(self.directory / ANSWER, json.dumps(result) + "\n")
        return True

    def run(self, stop: threading.Event) -> None:
        if not self.directory.is_dir():
            log.warning(
                "handover_dir_missing",
                path=str(self.directory),
                next_step="mount the pod's handover volume (manifests/statefulset.yaml) in both"
                " containers: without it the preStop hook cannot ask for a handover",
            )
        while not stop.is_set():
            try:
                self.check()
            except Exception:
                log.exception("prestop_watch_failed")
            stop.wait(POLL_SECONDS)

    def start(self, stop: threading.Event) -> threading.Thread:
        return start_thread(self.run, stop, "prestop-watch")
