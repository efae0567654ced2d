"""The one way this project replaces a file: readers see the old bytes or the new, never half,
and a crash at any point leaves no partial file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes | str, *, mode: int = 0o644) -> None:
    """Temp file in the same directory, fsync, rename over `path`, fsync of the directory.

    The replaced file's mode and owner are kept (nodes.conf belongs to Redis's user); a new file
    gets `mode`. Text is written as UTF-8 bytes with its line endings exactly as given. On any
    failure the temp file is removed and `path` is as it was.
    """
    payload = data.encode() if isinstance(data, str) else data
    try:
        existing: os.stat_result | None = path.stat()
    except FileNotFoundError:
        existing = None
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            if existing is not None:
                os.fchmod(handle.fileno(), existing.st_mode & 0o7777)
                if (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
                    os.fchown(handle.fileno(), existing.st_uid, existing.st_gid)
            else:
                os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
