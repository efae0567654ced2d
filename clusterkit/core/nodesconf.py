"""nodes.conf as a list of lines: node lines (the shared parser), the `vars` line, blank lines.

Rendering gives back the exact bytes of every line that was not changed, so a rewrite touches
only the addresses it means to touch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from clusterkit.core.nodes import NodeLine, NodeLineError, parse_node_line
from clusterkit.core.slots import is_number


class NodesConfError(ValueError):
    """nodes.conf does not follow the grammar Redis writes; names the line and what to do."""

    def __init__(self, line_number: int, reason: str, line: str = "") -> None:
        self.line_number = line_number
        self.reason = reason
        shown = f": {line[:120]!r}" if line else ""
        super().__init__(f"nodes.conf line {line_number}: {reason}{shown}")


@dataclass(frozen=True)
class ConfLine:
    """One line as read, with its ending; `node` is set for node lines."""

    text: str
    ending: str
    node: NodeLine | None = None


@dataclass(frozen=True)
class NodesConf:
    lines: tuple[ConfLine, ...]

    @property
    def nodes(self) -> list[NodeLine]:
        return [line.node for line in self.lines if line.node is not None]

    @property
    def myself(self) -> NodeLine:
        return next(n for n in self.nodes if n.is_myself)

    def render(self) -> str:
        return "".join(line.text + line.ending for line in self.lines)

    def with_ips(
        self, new_ips: dict[str, str], unaddressed: frozenset[str] = frozenset()
    ) -> NodesConf:
        """Set the IP of each node id in `new_ips`, and mark those in `unaddressed` noaddr;
        every other byte stays as it was."""
        lines = []
        for line in self.lines:
            node = line.node
            if node is not None and node.node_id in new_ips:
                node = node.with_ip(new_ips[node.node_id])
            elif node is not None and node.node_id in unaddressed:
                node = node.without_address()
            if node is not line.node and node is not None:
                lines.append(replace(line, text=node.raw, node=node))
            else:
                lines.append(line)
        return NodesConf(tuple(lines))


def parse_nodes_conf(text: str) -> NodesConf:
    """Parse nodes.conf; raises NodesConfError. Callers treat an empty file as "no config"."""
    lines: list[ConfLine] = []
    for number, full in enumerate(text.splitlines(keepends=True), start=1):
        body = full.rstrip("\r\n")
        ending = full[len(body) :]
        if not body.strip():
            lines.append(ConfLine(body, ending))
            continue
        if body.startswith("vars "):
            fields = body.split(" ")[1:]
            if len(fields) % 2 or not all(is_number(v) for v in fields[1::2]):
                raise NodesConfError(number, "vars line is not `vars name value ...`", body)
            lines.append(ConfLine(body, ending))
            continue
        try:
            node = parse_node_line(body, number)
        except NodeLineError as exc:
            raise NodesConfError(number, exc.reason, body) from None
        lines.append(ConfLine(body, ending, node))
    conf = NodesConf(tuple(lines))
    mine = [n for n in conf.nodes if n.is_myself]
    if len(mine) != 1:
        raise NodesConfError(len(lines), f"expected one node flagged myself, found {len(mine)}")
    return conf
