"""Settings read from environment variables, each also a command-line flag (flags win)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any


def raw_settings(
    settings_class: Any, argv: Sequence[str], environ: Mapping[str, str], prog: str
) -> dict[str, str]:
    """Field name -> text for every field of the dataclass that a flag or variable sets.

    Field `cluster_size` is the variable CLUSTER_SIZE and the flag --cluster-size; an empty
    variable counts as unset (Kubernetes renders optional values that way).
    """
    parser = argparse.ArgumentParser(prog=prog, description=settings_class.__doc__)
    names = [f.name for f in fields(settings_class)]
    for name in names:
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None)
    args = parser.parse_args(list(argv))
    raw: dict[str, str] = {}
    for name in names:
        value = getattr(args, name)
        if value is None:
            value = environ.get(name.upper())
        if value is not None and value != "":
            raw[name] = value
    return raw


def typed_settings(
    settings_class: Any,
    argv: Sequence[str],
    environ: Mapping[str, str],
    *,
    prog: str,
    required: Sequence[str],
    converters: Mapping[str, Callable[[str], object]],
) -> dict[str, object]:
    """Keyword arguments for `settings_class`: raw texts converted, NAMESPACE falling back to
    POD_NAMESPACE. Raises ValueError naming the variable that is missing or malformed."""
    raw = raw_settings(settings_class, argv, environ, prog)
    if "namespace" not in raw and environ.get("POD_NAMESPACE"):
        raw["namespace"] = environ["POD_NAMESPACE"]
    missing = [name.upper() for name in required if name not in raw]
    if missing:
        raise ValueError(f"required settings missing: {', '.join(missing)}")
    values: dict[str, object] = {}
    for name, text in raw.items():
        try:
            values[name] = converters.get(name, str)(text)
        except ValueError:
            raise ValueError(f"{name.upper()}={text!r} is not a number") from None
    return values


def read_password_file(path: Path | None) -> str | None:
    """The password in REDIS_PASSWORD_FILE (one line), None without a file. ValueError if
    unreadable."""
    if path is None:
        return None
    try:
        return path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise ValueError(
            f"REDIS_PASSWORD_FILE={path} cannot be read ({exc.strerror}); mount the Secret there"
            " or unset the variable"
        ) from None
