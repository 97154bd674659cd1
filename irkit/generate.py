"""What is generated from the declarations, and the check that it is in step (for CI): the
notebooks' parameters cells (`irkit.catalogue.cells`) and the README's table of probes, made from
the probe catalogue: what each probe measures, when it says WARN or CRIT (with the declared
defaults), and where it runs.

    python -m irkit.generate [--check] [KIT_DIR]
"""

from __future__ import annotations

import re
import string
import sys
from collections.abc import Sequence
from pathlib import Path

from irkit import probes
from irkit.catalogue import cells, parameters
from irkit.catalogue.areas import AREAS
from irkit.probes.contract import Entry

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


def main(argv: Sequence[str] = ()) -> int:
    args = list(argv)
    check = "--check" in args
    rest = [a for a in args if a != "--check"]
    kit = Path(rest[0] if rest else ".")
    notebooks, readme_path = kit / "notebooks", kit / "README.md"
    entries = probes.catalogue()
    if check:
        behind = [f"{notebooks / s}.ipynb: its parameters cell" for s in cells.stale(notebooks)]
        if stale(readme_path, entries):
            behind.append(f"{readme_path}: its table of probes")
        for what in behind:
            print(f"{what} differs from the declarations; run ./kit generate", file=sys.stderr)
        return 1 if behind else 0
    for section in cells.write(notebooks):
        print(f"generated the parameters cell of {notebooks / section}.ipynb")
    if write(readme_path, entries):
        print(f"generated the table of probes in {readme_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
