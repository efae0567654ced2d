"""clusterkit.core.redisconf: a password quoted for Redis's config parser keeps every byte."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from clusterkit.core.redisconf import auth_include, quote


def unquote(text: str) -> bytes:
    """What Redis's sdssplitargs makes of one double-quoted argument, for the escapes quote()
    writes (printable ASCII as is, \\xHH for the rest)."""
    assert text[0] == text[-1] == '"'
    body, out, i = text[1:-1], bytearray(), 0
    while i < len(body):
        if body[i] == "\\":
            assert body[i + 1] == "x"
            out.append(int(body[i + 2 : i + 4], 16))
            i += 4
        else:
            assert body[i] not in '"\\'
            out.append(ord(body[i]))
            i += 1
    return bytes(out)


@given(st.binary(min_size=1, max_size=64))
def test_any_bytes_come_back_and_stay_on_one_line(value: bytes) -> None:
    quoted = quote(value)
    assert unquote(quoted) == value
    assert quoted.isprintable() and quoted.isascii()


def test_the_include_sets_requirepass_and_masterauth_alike() -> None:
    text = auth_include('a"b\\n\r\n')
    assert text == 'requirepass "a\\x22b\\x5cn\\x0d\\x0a"\nmasterauth "a\\x22b\\x5cn\\x0d\\x0a"\n'
