"""A compact cache of the parsed matrix files, so a command does not re-parse 1.6 MB of TOML.

The TOML files stay the source of truth. Each parsed file is kept as a ``marshal`` dump named
by the sha256 of the file's bytes (with :data:`FORMAT` and the interpreter's tag), so an
edited file simply misses the cache and is parsed again; there is nothing to invalidate.
Loading the dump takes a few milliseconds where ``tomllib`` takes 0.15 s for releases.toml.

The cache lives in ``$VLLM_PIN_MATRIX_CACHE``, else ``<user cache dir>/vllm-pin/matrix``;
``VLLM_PIN_MATRIX_CACHE=off`` turns it off. Files are written atomically. A cache that cannot
be read or written (corrupt, truncated, read-only disk) is ignored: never an error.

:func:`validated` / :func:`mark_validated` remember that the loader fully checked one exact
set of files, so the next load may parse the rows it does not need on first use.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
from pathlib import Path
from typing import Any

from vllm_pin import __version__
from vllm_pin.fsutil import default_cache_dir, write_cache_file

__all__ = [
    "CACHE_ENV",
    "FORMAT",
    "cache_dir",
    "mark_validated",
    "parse",
    "read_toml",
    "validated",
]

CACHE_ENV = "VLLM_PIN_MATRIX_CACHE"
#: bump when what is cached (or what a "validated" mark vouches for) changes meaning
FORMAT = 1
_OFF = ("off", "0", "no", "none")


def cache_dir() -> Path | None:
    """Where parsed files are kept; None when ``$VLLM_PIN_MATRIX_CACHE`` turns the cache off."""
    env = os.environ.get(CACHE_ENV, "")
    if env.lower() in _OFF:
        return None
    return Path(env) if env else default_cache_dir() / "matrix"


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    """The parsed TOML document at ``path`` and the sha256 of its bytes.

    Raises what reading and parsing raise (OSError; ValueError for text that is not TOML or
    not UTF-8), for the caller to word; problems with the cache itself only cost a re-parse.
    """
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    where = cache_dir()
    tag = f"{digest}-{FORMAT}-{sys.implementation.cache_tag}"
    dump = where / f"{tag}.marshal" if where is not None else None
    cached = _load_dump(dump) if dump is not None else None
    if cached is not None:
        return cached, digest
    data = parse(raw)
    if dump is not None:
        # marshal: the fastest stdlib loader for plain dicts/lists/str/int/float/bool; a TOML
        # date or time is not marshal-able (ValueError), so such a file is simply not cached
        with contextlib.suppress(ValueError):
            _write(dump, marshal.dumps(data))
    return data, digest


def parse(raw: bytes) -> dict[str, Any]:
    """Parse TOML bytes (a cache miss)."""
    # imported here: on a cache hit, importing tomllib would be most of what the load costs
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.9/3.10 only
        import tomli as tomllib
    return tomllib.loads(raw.decode("utf-8"))


def _load_dump(dump: Path) -> dict[str, Any] | None:
    try:
        data = marshal.loads(dump.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None  # absent or corrupt: parse the TOML (and rewrite the dump)
    return data if isinstance(data, dict) else None


def _write(path: Path, data: bytes) -> None:
    with contextlib.suppress(OSError):  # a read-only or full cache dir costs speed, no more
        write_cache_file(path, data)


def _mark(digests: tuple[str, ...]) -> Path | None:
    where = cache_dir()
    if where is None:
        return None
    key = hashlib.sha256(f"{FORMAT} {__version__} {' '.join(digests)}".encode()).hexdigest()
    return where / f"validated-{key}"


def validated(*digests: str) -> bool:
    """Whether this exact set of files (by sha256) passed the loader's full checks before."""
    mark = _mark(digests)
    return mark is not None and mark.is_file()


def mark_validated(*digests: str) -> None:
    """Remember that this set of files passed the loader's full checks."""
    mark = _mark(digests)
    if mark is not None:
        _write(mark, b"")
