"""The two copies of a key during a move, compared byte for byte (DUMP): a key that exists on
both sides moves (MIGRATE ... REPLACE) only when both are the same; different values are a
KeyConflict, which is the user's decision."""

from __future__ import annotations

from collections.abc import Sequence

import redis


class KeyConflict(Exception):
    """A key exists on both sides of a move with different values: which one is right is the
    user's decision. Both copies stay where they are, and the slot stays open."""

    def __init__(self, slot: int, keys: Sequence[bytes], source: str, target: str) -> None:
        self.slot = slot
        self.keys = [k.decode("utf-8", "backslashreplace") for k in keys]
        self.source = source
        self.target = target
        more = f" (and {len(keys) - 1} more keys)" if len(keys) > 1 else ""
        super().__init__(
            f"key {self.keys[0]!r}{more} of slot {slot} exists on {source} and on {target}"
            " with different values"
        )


class MoveFailed(Exception):
    """A reply that stops one move (the slot stays open for the next round); never holds the
    password, only what was asked of which node and the node's answer."""


def dumps(client: redis.Redis, keys: list[bytes]) -> list[bytes | None]:
    """DUMP of each key (None when absent). ASKING first: the node may be importing the slot."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("ASKING")
        pipe.execute_command("DUMP", key)
    replies = pipe.execute(raise_on_error=False)[1::2]
    values: list[bytes | None] = []
    for reply in replies:
        # A migrating source answers ASK for a key it no longer has: absent here.
        if isinstance(reply, redis.exceptions.AskError):
            values.append(None)
        elif isinstance(reply, Exception):
            raise MoveFailed(f"DUMP: {reply}")
        else:
            values.append(reply if isinstance(reply, bytes) else None)
    return values
