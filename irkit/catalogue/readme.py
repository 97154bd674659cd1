"""The README's table of probes, generated from the probe catalogue: what each probe measures,
when it says WARN or CRIT (with the declared defaults), and where it runs."""

from __future__ import annotations

import re
import string
from pathlib import Path

from irkit.catalogue import parameters
from irkit.catalogue.areas import AREAS
from irkit.probe import Entry

BEGIN = "<!-- probes: generated from the probe catalogue by ./kit generate; do not edit -->"
END = "<!-- probes: end -->"


def filled(text: str) -> str:
    """A catalogue text with each `{parameter}` replaced by its declared default."""
    names = [field for _, field, _, _ in string.Formatter().parse(text) if field]
    return text.format(**{name: parameters.get(name).shown for name in names})


def runs(entry: Entry) -> str:
    where = []
    if entry.area:
        where.append(f"health report: {AREAS[entry.area]}")
    if entry.recheck:
        where.append("resolve re-check")
    return ", ".join(where) or f"on demand: {entry.left_out}"


def table(entries: list[Entry]) -> str:
    lines = [
        "| probe | measures | WARN / CRIT (defaults) | runs in |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{e.name}` | {filled(e.measures)} | {filled(e.grades)} | {runs(e)} |" for e in entries
    ]
    return "\n".join(lines)


_BLOCK = re.compile(re.escape(BEGIN) + r"\n.*?" + re.escape(END), re.S)


def generated(readme: str, entries: list[Entry]) -> str:
    """The README with its probe table replaced by the generated one."""
    if not _BLOCK.search(readme):
        raise SystemExit(f"README.md: no block between {BEGIN!r} and {END!r} to generate")
    return _BLOCK.sub(lambda _: f"{BEGIN}\n{table(entries)}\n{END}", readme, count=1)


def stale(path: Path, entries: list[Entry]) -> bool:
    text = path.read_text(encoding="utf-8")
    return generated(text, entries) != text


def write(path: Path, entries: list[Entry]) -> bool:
    text = path.read_text(encoding="utf-8")
    new = generated(text, entries)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text
