"""Fix nodes.conf before Redis reads it: this node's own address, and every peer whose pod can
be found now. Works by node id, field by field; writes atomically and keeps a .bak."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from clusterkit.core.identity import pod_ordinal
from clusterkit.core.naming import PodNaming
from clusterkit.core.nodes import NodeLine
from clusterkit.core.nodesconf import NodesConf, NodesConfError, parse_nodes_conf
from clusterkit.io.atomicfile import write_atomically

log = structlog.get_logger()

Resolve = Callable[[str], str | None]
"""Pod FQDN -> its current address, or None when it has none yet."""

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


@dataclass(frozen=True)
class FixPlan:
    new_ips: dict[str, str]
    """node id -> its pod's current address (myself -> POD_IP)."""
    unresolved: list[str]
    unaddressed: frozenset[str]


def pod_fqdn_of(line: NodeLine, naming: PodNaming, pod_map: dict[str, str]) -> str | None:
    """The FQDN of the pod behind a node line: from its announced hostname, else the pod map."""
    ordinal = pod_ordinal(line, naming, pod_map)
    if ordinal is not None:
        return naming.pod_fqdn(ordinal)
    # A hostname of another StatefulSet: asked for as it is.
    return line.address.hostname or None


def read_pod_map(nodes_conf: Path) -> dict[str, str]:
    try:
        data = json.loads((nodes_conf.parent / POD_MAP_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def plan_fix(
    conf: NodesConf, pod_ip: str, naming: PodNaming, pod_map: dict[str, str], resolve: Resolve
) -> FixPlan:
    """New IP per node id (myself -> pod_ip; peers -> where DNS says their pods are now).
    Two nodes never end up on one address: a peer still listed at the address this pod has now
    (its own pod moved and does not resolve yet) is marked noaddr, as Redis itself does."""
    me = conf.myself
    new_ips: dict[str, str] = {}
    unresolved: list[str] = []
    if me.address.ip != pod_ip:
        new_ips[me.node_id] = pod_ip
    for line in conf.nodes:
        if line.is_myself:
            continue
        fqdn = pod_fqdn_of(line, naming, pod_map)
        address = resolve(fqdn) if fqdn else None
        if address is None:
            unresolved.append(line.node_id)
        elif address != line.address.ip:
            new_ips[line.node_id] = address
    # Two nodes must never end up on one address (a stale record): such peer changes are
    # dropped, repeatedly, since dropping one can bring back a clash; the heal loop goes on.
    while True:
        final = {n.node_id: new_ips.get(n.node_id, n.address.ip) for n in conf.nodes}
        clashing = [
            nid
            for nid in new_ips
            if nid != me.node_id and list(final.values()).count(final[nid]) > 1
        ]
        if not clashing:
            break
        for nid in clashing:
            del new_ips[nid]
    unaddressed = frozenset(
        nid for nid, ip in final.items() if nid != me.node_id and ip == final[me.node_id]
    )
    return FixPlan(new_ips, unresolved, unaddressed)


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
