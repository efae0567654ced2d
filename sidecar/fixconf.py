"""Fix nodes.conf before Redis reads it: this node's own address, and every peer whose pod can
be found now. Works by node id, field by field; writes atomically and keeps a .bak."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from clusterkit.core.addresses import Resolve, plan_fix
from clusterkit.core.naming import PodNaming
from clusterkit.core.nodesconf import NodesConfError, parse_nodes_conf
from clusterkit.io.atomicfile import write_atomically

log = structlog.get_logger()


POD_MAP_NAME = "pod-map.json"
"""Beside nodes.conf: node id -> pod name, for peers whose lines carry no hostname."""


class FixError(Exception):
    """nodes.conf can't be fixed safely; it was left untouched. The message says what to do."""


@dataclass
class FixReport:
    outcome: str
    """missing (no config yet), unchanged, rewritten."""
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)
    """node id -> (old ip, new ip)."""
    unresolved: list[str] = field(default_factory=list)
    """Peers whose pods have no address yet: the heal loop will find them later."""
    unaddressed: list[str] = field(default_factory=list)
    """Peers written as `noaddr`: their old address is this pod's address now."""


def read_pod_map(nodes_conf: Path) -> dict[str, str]:
    try:
        data = json.loads((nodes_conf.parent / POD_MAP_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def fix_nodes_conf(path: Path, pod_ip: str, naming: PodNaming, resolve: Resolve) -> FixReport:
    """Fix `path` in place (atomically); raises FixError and leaves the file as it was when it
    does not parse."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return FixReport("missing")
    try:
        text = raw.decode()  # no newline translation: CRLF files keep their bytes
    except UnicodeDecodeError as exc:
        raise FixError(
            f"{path} is corrupt: not text (byte {exc.start}); left untouched and Redis not"
            f" started. Restore {path.name}.bak if it is sound, or move the file away"
        ) from None
    if not text:
        return FixReport("missing")
    try:
        conf = parse_nodes_conf(text)
    except NodesConfError as exc:
        raise FixError(
            f"{path} is corrupt at line {exc.line_number} ({exc.reason}); left untouched and"
            f" Redis not started. Restore {path.name}.bak if it is sound, or move the file away"
            " to make this node join as a new node (its slots must then come from its replica)"
        ) from None
    plan = plan_fix(conf, pod_ip, naming, read_pod_map(path), resolve)
    if not plan.new_ips and not plan.unaddressed:
        return FixReport("unchanged", unresolved=plan.unresolved)
    fixed = conf.with_ips(plan.new_ips, plan.unaddressed).render()
    mode = path.stat().st_mode & 0o7777
    write_atomically(path.with_name(path.name + ".bak"), raw, mode=mode)
    write_atomically(path, fixed)
    before = {n.node_id: n.address.ip for n in conf.nodes}
    return FixReport(
        "rewritten",
        changed={nid: (before[nid], ip) for nid, ip in plan.new_ips.items()},
        unresolved=plan.unresolved,
        unaddressed=sorted(plan.unaddressed),
    )
