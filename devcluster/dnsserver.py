"""Tiny authoritative DNS server (UDP, and TCP for answers too big for UDP) answering like
CoreDNS's kubernetes plugin does for a StatefulSet's headless Service; the JSON zone file is
re-read on change so tests can move pods."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import structlog

import clusterkit.io.logs
from clusterkit.io.atomicfile import write_atomically

log = structlog.get_logger()

TCP_IDLE_TIMEOUT = 5.0  # seconds a TCP client may stay silent before we hang up

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Zone:
    domain: dns.name.Name
    ttl: int
    # Name hashing/equality in dnspython is case-insensitive, so lookups need no folding.
    records: Mapping[dns.name.Name, tuple[Address, ...]] = field(hash=False)
    serial: int = 1

    @classmethod
    def build(
        cls, domain: str, records: Mapping[str, Sequence[str]], ttl: int = 5, serial: int = 1
    ) -> Zone:
        """Validate plain data into a Zone; raises ValueError on anything malformed."""
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl < 2**31:
            raise ValueError(f"bad ttl: {ttl!r}")
        try:
            origin = dns.name.from_text(domain)
            parsed: dict[dns.name.Name, tuple[Address, ...]] = {}
            for name, addrs in records.items():
                owner = dns.name.from_text(name)
                if not owner.is_subdomain(origin):
                    raise ValueError(f"{name} is outside {domain}")
                # A bare string would iterate per character; ints are valid to ip_address().
                if isinstance(addrs, str) or not all(isinstance(a, str) for a in addrs):
                    raise ValueError(f"addresses of {name} must be a list of strings")
                parsed[owner] = tuple(ipaddress.ip_address(a) for a in addrs)
        except (dns.exception.DNSException, TypeError, AttributeError) as exc:
            raise ValueError(f"bad zone data: {exc}") from exc
        return cls(domain=origin, ttl=ttl, records=parsed, serial=serial % 2**32)


def _read(path: Path) -> tuple[Zone, tuple[int, ...]]:
    # fstat the open file so the change key describes exactly the bytes parsed.
    with path.open(encoding="utf-8") as f:
        st = os.fstat(f.fileno())
        data = json.loads(f.read())
    if not (isinstance(data, dict) and isinstance(data.get("domain"), str)):
        raise ValueError("zone file must be an object with a string 'domain'")
    zone = Zone.build(data["domain"], data.get("records", {}), data.get("ttl", 5), int(st.st_mtime))
    return zone, (st.st_ino, st.st_mtime_ns, st.st_size)


def load_zone(path: Path) -> Zone:
    return _read(path)[0]


def write_zone(path: Path, domain: str, records: Mapping[str, Sequence[str]], ttl: int = 5) -> None:
    """Atomically replace the zone file; readers see the old or new zone, never half."""
    Zone.build(domain, records, ttl)  # refuse to publish data the server would reject
    data = {"domain": domain, "ttl": ttl, "records": {k: list(v) for k, v in records.items()}}
    write_atomically(path, json.dumps(data, indent=2, sort_keys=True))
    # The kernel stamps mtime from a coarse clock (and a freed inode number comes back): a
    # fine-grained mtime keeps two quick same-size rewrites distinguishable to the change check.
    now = time.time_ns()
    os.utime(path, ns=(now, now))


def _soa(zone: Zone) -> dns.rrset.RRset:
    d = zone.domain.to_text()
    text = f"ns.dns.{d} hostmaster.{d} {zone.serial} 7200 1800 86400 {zone.ttl}"
    return dns.rrset.from_text(zone.domain, zone.ttl, "IN", "SOA", text)


def answer(zone: Zone, query: dns.message.Message) -> dns.message.Message:
    """Build the response to one query (which must not have the QR flag set)."""
    resp = dns.message.make_response(query)
    if query.opcode() != dns.opcode.QUERY:
        resp.set_rcode(dns.rcode.NOTIMP)
        return resp
    if len(query.question) != 1:
        resp.set_rcode(dns.rcode.FORMERR)
        return resp
    q = query.question[0]
    if q.rdclass != dns.rdataclass.IN or not q.name.is_subdomain(zone.domain):
        resp.set_rcode(dns.rcode.REFUSED)
        return resp
    resp.flags |= dns.flags.AA
    addrs = zone.records.get(q.name)
    if addrs is None:
        # Apex and empty non-terminals exist (NODATA), as in any real zone.
        exists = q.name == zone.domain or any(n.is_subdomain(q.name) for n in zone.records)
        if not exists:
            resp.set_rcode(dns.rcode.NXDOMAIN)
        resp.authority.append(_soa(zone))
        return resp
    version = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 6}.get(q.rdtype)
    matching = [str(a) for a in addrs if a.version == version]
    if matching:
        resp.answer.append(
            dns.rrset.from_text_list(q.name, zone.ttl, dns.rdataclass.IN, q.rdtype, matching)
        )
    else:  # NODATA carries the SOA so resolvers can cache the negative answer
        resp.authority.append(_soa(zone))
    return resp


class _ZoneFile:
    """The last good zone, re-read when the file's identity, mtime or size changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zone, self._key = _read(path)
        self._bad_key: tuple[int, ...] | None = None
        self._lock = threading.Lock()  # the UDP loop and TCP connections share one instance

    def current(self) -> Zone:
        with self._lock:
            try:
                st = os.stat(self.path)
            except OSError:
                return self.zone
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            if key in (self._key, self._bad_key):
                return self.zone
            try:
                self.zone, self._key = _read(self.path)
            except (OSError, ValueError) as exc:
                self._bad_key = key  # warn once per bad version, keep serving the old zone
                log.warning("dns_zone_reload_failed", path=str(self.path), error=str(exc))
                return self.zone
            log.info("dns_zone_reloaded", path=str(self.path), records=len(self.zone.records))
            return self.zone


class _Stop(BaseException):  # not Exception: no handler below may swallow it
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    # Raising is what interrupts the blocking recvfrom (PEP 475 retries it otherwise).
    raise _Stop


def serve(bind_ip: str, port: int, zone_path: Path, ready_file: Path | None = None) -> None:
    """Serve until SIGTERM/SIGINT. Must run in the main thread (signal handlers)."""
    zone_file = _ZoneFile(zone_path)
    if ready_file is not None:
        ready_file.unlink(missing_ok=True)  # a stale file would signal readiness too early
    family = socket.AF_INET6 if ipaddress.ip_address(bind_ip).version == 6 else socket.AF_INET
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with (
            socket.socket(family, socket.SOCK_DGRAM) as udp,
            socket.socket(family, socket.SOCK_STREAM) as tcp,
        ):
            # No SO_REUSEADDR for UDP: it would let two servers share the port silently.
            udp.bind((bind_ip, port))
            # For TCP it only lets us rebind past TIME_WAIT; two listeners still conflict.
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((bind_ip, port))
            tcp.listen()
            acceptor = threading.Thread(
                target=_accept_loop, args=(tcp, zone_file), name="dns-tcp", daemon=True
            )
            acceptor.start()
            try:
                log.info("dns_server_started", bind=bind_ip, port=port, zone=str(zone_path))
                if ready_file is not None:
                    ready_file.touch()
                while True:
                    data, peer = udp.recvfrom(65535)
                    if (wire := _reply(zone_file.current(), data, peer, tcp=False)) is None:
                        continue
                    try:
                        udp.sendto(wire, peer)
                    except OSError as exc:
                        log.debug("dns_reply_failed", peer=str(peer), error=str(exc))
            finally:
                # shutdown() wakes the blocked accept() (close() alone may not, on Linux).
                with contextlib.suppress(OSError):
                    tcp.shutdown(socket.SHUT_RDWR)
                acceptor.join(timeout=1)
    except _Stop:
        log.info("dns_server_stopped", bind=bind_ip, port=port)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _reply(zone: Zone, data: bytes, peer: object, *, tcp: bool) -> bytes | None:
    """The wire reply to one wire query; None (send nothing) for garbage or a response."""
    try:
        query = dns.message.from_wire(data)
    except Exception as exc:  # any garbage on the wire must not stop the server
        log.debug("dns_malformed_packet", peer=str(peer), tcp=tcp, error=repr(exc))
        return None
    if query.flags & dns.flags.QR:
        return None  # a response, not a query: answering could start a loop
    resp = answer(zone, query)
    # Over UDP, set TC rather than exceed 512 bytes or the client's EDNS size: the client
    # then retries over TCP, where only the 2-byte length prefix limits the size.
    limit = 65535 if tcp else max(512, query.payload) if query.edns >= 0 else 512
    try:
        return resp.to_wire(max_size=limit, prefer_truncation=True)
    except dns.exception.DNSException as exc:
        log.debug("dns_reply_failed", peer=str(peer), tcp=tcp, error=str(exc))
        return None


def _accept_loop(listener: socket.socket, zones: _ZoneFile) -> None:
    # Blocked here and in the connection threads (which inherit the mask), stop signals
    # always go to the main thread, interrupting its recvfrom.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    while True:
        try:
            conn, peer = listener.accept()
        except OSError:
            return  # the listener was shut down: the server is stopping
        args = (conn, peer, zones)
        threading.Thread(target=_serve_tcp, args=args, name="dns-tcp-conn", daemon=True).start()


def _serve_tcp(conn: socket.socket, peer: object, zones: _ZoneFile) -> None:
    """Answer 2-byte length-prefixed queries until EOF, garbage or TCP_IDLE_TIMEOUT of silence."""
    conn.settimeout(TCP_IDLE_TIMEOUT)
    try:
        with conn, conn.makefile("rb") as stream:
            while len(prefix := stream.read(2)) == 2:
                data = stream.read(int.from_bytes(prefix, "big"))  # short on EOF: garbage
                if (wire := _reply(zones.current(), data, peer, tcp=True)) is None:
                    return
                conn.sendall(len(wire).to_bytes(2, "big") + wire)
    except OSError as exc:  # includes the idle timeout
        log.debug("dns_tcp_closed", peer=str(peer), error=str(exc) or type(exc).__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster.dnsserver", description=__doc__)
    parser.add_argument("--bind", required=True, help="IP address to listen on (UDP and TCP)")
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--zone", type=Path, required=True, help="JSON zone file")
    parser.add_argument("--ready-file", type=Path, help="touched once both sockets are bound")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    clusterkit.io.logs.configure(level=args.log_level)
    try:
        serve(args.bind, args.port, args.zone, args.ready_file)
    except (OSError, ValueError) as exc:
        log.error("dns_server_failed", error=str(exc))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
