"""Plain-text tables for the CLI and the demo."""

from __future__ import annotations


def print_table(rows: list[dict[str, str]]) -> None:
    if not rows:
        print("(no pod answered)")
        return
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in columns))
