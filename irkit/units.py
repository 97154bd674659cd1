"""Numbers as a responder reads them: sizes and ages."""

from __future__ import annotations


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_age(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def count(n: int, singular: str, plural: str | None = None) -> str:
    """`count(1, "query", "queries")` → "1 query"; `count(3, "worker")` → "3 workers"."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"
