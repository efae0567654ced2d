"""Settings read from environment variables, each also a command-line flag (flags win)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import fields
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
