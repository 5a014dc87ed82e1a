"""What refresh derived from one released wheel, kept as JSON by the wheel's sha256.

A released file never changes, so a result is valid as long as the parser that made it:
each kind of result (``timeline``, ``elf``) names its own parser version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vllm_pin.fsutil import write_cache_file
from vllm_pin.index.pypi import IndexFile

__all__ = ["load", "store"]


def _path(cache_dir: Path, kind: str, f: IndexFile, version: int) -> Path | None:
    # the sha256 is validated by IndexFile (64 hex digits): it cannot leave the cache
    return cache_dir / kind / f"{f.sha256}-{version}.json" if f.sha256 else None


def load(cache_dir: Path, kind: str, f: IndexFile, version: int) -> Any:
    """The stored JSON value for this wheel, or None when absent or unreadable."""
    path = _path(cache_dir, kind, f, version)
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def store(cache_dir: Path, kind: str, f: IndexFile, version: int, value: Any) -> None:
    """Keep ``value`` for this wheel (nothing for a file the index gives no sha256)."""
    path = _path(cache_dir, kind, f, version)
    if path is not None:
        write_cache_file(path, json.dumps(value, sort_keys=True).encode())
