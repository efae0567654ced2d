"""One parser for node lines: the output of `CLUSTER NODES` and the lines of `nodes.conf`.

Grammar (as Redis's src/cluster.c, clusterGenNodeDescription, writes it): `<id> <addr> <flags>
<master|-> <ping_sent> <pong_recv> <configEpoch> <link-state> [slot | a-b | [slot->-id] |
[slot-<-id]]*`, and a last `vars ...` line in nodes.conf. `<addr>` is `ip:port@cport` (6.x),
`ip:port@cport,hostname` (7.0), `ip:port@cport,[hostname][,k=v]*` (7.2+, Valkey 8). Lines keep
their raw text so that a rewrite touches only the fields it changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from clusterkit.core.slots import SlotRange, is_number

NODE_ID_RE = re.compile(r"^[0-9a-f]{40}$")
KNOWN_FLAGS = frozenset(
    {"myself", "master", "slave", "fail?", "fail", "handshake", "noaddr", "nofailover", "noflags"}
)
MIN_FIELDS = 8
BUS_PORT_OFFSET = 10000
"""The cluster bus listens on the client port + 10000 unless told otherwise."""
DOWN_FLAGS = frozenset({"fail", "fail?", "noaddr"})
"""Flags under which a view cannot use a node, whatever its link says."""


class NodeLineError(ValueError):
    """A node line that does not follow the grammar; says which line and why."""

    def __init__(self, line_number: int, line: str, reason: str) -> None:
        self.line_number = line_number
        self.line = line
        self.reason = reason
        super().__init__(f"line {line_number}: {reason}: {line[:120]!r}")


@dataclass(frozen=True)
class NodeAddress:
    """`ip:port@cport` plus everything after it (`,hostname,aux...`) kept verbatim."""

    ip: str
    port: int
    cport: int | None
    suffix: str = ""

    @property
    def hostname(self) -> str:
        """The announced hostname, or "" (7.0+ only)."""
        return self.suffix[1:].split(",", 1)[0] if self.suffix.startswith(",") else ""

    @property
    def aux(self) -> dict[str, str]:
        """7.2+ `key=value` fields such as shard-id or tls-port."""
        fields = self.suffix[1:].split(",")[1:] if self.suffix.startswith(",") else []
        return dict(field.partition("=")[::2] for field in fields if "=" in field)

    def render(self) -> str:
        bus = "" if self.cport is None else f"@{self.cport}"
        return f"{self.ip}:{self.port}{bus}{self.suffix}"

    @classmethod
    def parse(cls, text: str) -> NodeAddress:
        endpoint, comma, rest = text.partition(",")
        suffix = comma + rest
        hostport, at, cport_text = endpoint.partition("@")
        # The last colon separates the port: IPv6 addresses carry colons of their own.
        ip, colon, port_text = hostport.rpartition(":")
        if not colon or not is_number(port_text) or (at and not is_number(cport_text)):
            raise ValueError(f"bad address {text!r}")
        return cls(ip, int(port_text), int(cport_text) if at else None, suffix)


@dataclass(frozen=True)
class NodeLine:
    """One node as a node line describes it."""

    node_id: str
    address: NodeAddress
    flags: frozenset[str]
    master_id: str | None
    ping_sent: int
    pong_received: int
    config_epoch: int
    link_state: str
    slots: tuple[SlotRange, ...]
    migrations: tuple[str, ...]
    raw: str

    @property
    def is_myself(self) -> bool:
        return "myself" in self.flags

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def is_replica(self) -> bool:
        return "slave" in self.flags

    @property
    def is_handshake(self) -> bool:
        return "handshake" in self.flags

    @property
    def is_failing(self) -> bool:
        return bool(self.flags & {"fail", "fail?"})

    @property
    def connected(self) -> bool:
        return self.link_state == "connected"

    @property
    def is_down(self) -> bool:
        """This view cannot use the node: its link is down, or it is flagged failing, suspected
        or without an address. The one "down" predicate of the Job and the sidecar."""
        return not self.connected or self.flagged_down

    @property
    def flagged_down(self) -> bool:
        """Flagged fail, fail? or noaddr (whatever the link's state)."""
        return bool(self.flags & DOWN_FLAGS)

    @property
    def slot_count(self) -> int:
        return sum(r.count for r in self.slots)

    def with_ip(self, ip: str) -> NodeLine:
        """The same line with only the IP changed; every other byte stays as it was."""
        fields = self.raw.split(" ")
        # Splice only the IP: the port text after it stays byte for byte as Redis wrote it.
        fields[1] = ip + fields[1][len(self.address.ip) :]
        return replace(self, address=replace(self.address, ip=ip), raw=" ".join(fields))

    def without_address(self) -> NodeLine:
        """The same line as Redis writes a node whose address it no longer trusts: `:0@0`
        (hostname and aux fields kept) and the `noaddr` flag."""
        fields = self.raw.split(" ")
        address = NodeAddress("", 0, None if self.address.cport is None else 0, self.address.suffix)
        fields[1] = address.render()
        flags = self.flags | {"noaddr"}
        if "noaddr" not in self.flags:
            fields[2] += ",noaddr"
        return replace(self, address=address, flags=flags, raw=" ".join(fields))


def parse_node_line(line: str, line_number: int = 1) -> NodeLine:
    """Parse one node line; raises NodeLineError naming the line and the problem."""
    fields = line.split(" ")
    if len(fields) < MIN_FIELDS:
        raise NodeLineError(line_number, line, f"expected at least {MIN_FIELDS} fields")
    node_id, addr, flags_text, master, ping, pong, epoch, link, *slot_fields = fields
    if not NODE_ID_RE.match(node_id):
        raise NodeLineError(line_number, line, "node id is not 40 hex characters")
    try:
        address = NodeAddress.parse(addr)
    except ValueError as exc:
        raise NodeLineError(line_number, line, str(exc)) from None
    flags = frozenset(flags_text.split(","))
    unknown = flags - KNOWN_FLAGS
    if unknown:
        raise NodeLineError(line_number, line, f"unknown flags {sorted(unknown)}")
    if master != "-" and not NODE_ID_RE.match(master):
        raise NodeLineError(line_number, line, "master id is neither '-' nor 40 hex characters")
    if not (is_number(ping) and is_number(pong) and is_number(epoch)):
        raise NodeLineError(line_number, line, "ping/pong/configEpoch must be numbers")
    if link not in ("connected", "disconnected"):
        raise NodeLineError(line_number, line, f"link state {link!r} is not (dis)connected")
    slots: list[SlotRange] = []
    migrations: list[str] = []
    for field in slot_fields:
        if field.startswith("[") and field.endswith("]"):
            migrations.append(field)
            continue
        try:
            slots.append(SlotRange.parse(field))
        except ValueError as exc:
            raise NodeLineError(line_number, line, str(exc)) from None
    return NodeLine(
        node_id=node_id,
        address=address,
        flags=flags,
        master_id=None if master == "-" else master,
        ping_sent=int(ping),
        pong_received=int(pong),
        config_epoch=int(epoch),
        link_state=link,
        slots=tuple(slots),
        migrations=tuple(migrations),
        raw=line,
    )


def parse_cluster_nodes(text: str) -> list[NodeLine]:
    """Parse the reply of `CLUSTER NODES` (one node per line, no vars line)."""
    return [
        parse_node_line(line, number)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def myself(nodes: list[NodeLine]) -> NodeLine:
    """The line flagged `myself`; every CLUSTER NODES reply and nodes.conf has exactly one."""
    found = [n for n in nodes if n.is_myself]
    if len(found) != 1:
        raise ValueError(f"expected one 'myself' line, found {len(found)}")
    return found[0]
