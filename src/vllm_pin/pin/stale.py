"""`--check`: whether a generated file differs from the one on disk, and how that is reported."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path


def differs(path: Path, text: str) -> bool:
    """Whether writing ``text`` would change ``path`` (a missing file always would)."""
    try:
        return path.read_text(encoding="utf-8") != text
    except FileNotFoundError:
        return True


def report_stale(stale: Iterable[Path | str], command: str) -> int:
    """One line per stale item, naming the command that fixes it; the exit code (1 if any)."""
    items = list(stale)
    for item in items:
        print(f"stale: {item} (regenerate with: {command})", file=sys.stderr)
    if not items:
        print("up to date")
    return 1 if items else 0
