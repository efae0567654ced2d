"""Lines of Redis configuration that carry arbitrary bytes (a password), quoted so that Redis
reads back exactly those bytes. Pure.

Redis splits a config line with sdssplitargs: inside double quotes it understands `\\"`, `\\\\`,
`\\n`, `\\r`, `\\t`, `\\b`, `\\a` and `\\xHH`. Every byte that is not printable ASCII, and `"` and
`\\`, is written as `\\xHH`: the value can hold quotes, backslashes, newlines (no injected
config line), `%`, spaces and non-UTF-8 bytes, and Redis gets each byte as it is.
"""

from __future__ import annotations

PLAIN = frozenset(range(0x20, 0x7F)) - {ord('"'), ord("\\")}


def quote(value: bytes) -> str:
    """`value` as one double-quoted Redis config argument."""
    return '"' + "".join(chr(b) if b in PLAIN else f"\\x{b:02x}" for b in value) + '"'


def password_bytes(password: str) -> bytes:
    """The password's bytes as read from its file (clusterkit.settings keeps undecodable bytes
    as surrogates, and the Redis clients encode them back the same way)."""
    return password.encode("utf-8", "surrogateescape")


def auth_include(password: str) -> str:
    """The include that gives Redis its password: clients and replication (masterauth)."""
    quoted = quote(password_bytes(password))
    return f"requirepass {quoted}\nmasterauth {quoted}\n"
