"""Fail if a stored notebook carries outputs or execution counts (strip them with ./kit strip)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def dirty(path: Path) -> bool:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return any(
        c.get("outputs") or c.get("execution_count") is not None
        for c in cells
        if c.get("cell_type") == "code"
    )


def main(folder: str) -> int:
    found = [p for p in sorted(Path(folder).glob("*.ipynb")) if dirty(p)]
    for path in found:
        print(f"{path}: stored with outputs; run ./kit strip", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "notebooks"))
