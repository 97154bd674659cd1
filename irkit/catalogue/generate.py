"""Write what is generated from the declarations: the notebooks' parameters cells and the
README's table of probes; with `--check`, only say what is out of step (for CI).

    python -m irkit.catalogue.generate [--check] [KIT_DIR]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from irkit import probes
from irkit.catalogue import cells, readme


def main(argv: Sequence[str] = ()) -> int:
    args = list(argv)
    check = "--check" in args
    rest = [a for a in args if a != "--check"]
    kit = Path(rest[0] if rest else ".")
    notebooks, readme_path = kit / "notebooks", kit / "README.md"
    entries = probes.catalogue()
    if check:
        behind = [f"{notebooks / s}.ipynb: its parameters cell" for s in cells.stale(notebooks)]
        if readme.stale(readme_path, entries):
            behind.append(f"{readme_path}: its table of probes")
        for what in behind:
            print(f"{what} differs from the declarations; run ./kit generate", file=sys.stderr)
        return 1 if behind else 0
    for section in cells.write(notebooks):
        print(f"generated the parameters cell of {notebooks / section}.ipynb")
    if readme.write(readme_path, entries):
        print(f"generated the table of probes in {readme_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
