"""Safe file writes: every output checked first, then each written atomically.

A reader sees the old file or the new one, never half of one. Also where caches live
(`default_cache_dir`), shared by the index client and the matrix loader's cache.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from vllm_pin.errors import VllmPinError


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` through a temp file + os.replace.

    The temp file lives in the target's directory so the rename never crosses file systems.
    An existing file keeps its permission bits. Failures raise a one-line VllmPinError and
    leave ``path`` untouched.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise VllmPinError(
            f"cannot write {path}: {exc.strerror or exc}; choose a writable location"
        ) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, _mode_for(path))
        os.replace(tmp_name, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise VllmPinError(
            f"cannot write {path}: {exc.strerror or exc}; choose a writable location"
        ) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def _mode_for(path: Path) -> int:
    """Keep an existing file's mode; give a new one what open() would (0o666 minus umask)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def check_writable(paths: Iterable[Path]) -> None:
    """Fail before writing anything if some output cannot be written."""
    for path in paths:
        parent = path.parent if str(path.parent) else Path(".")
        if path.is_dir():
            raise VllmPinError(f"cannot write {path}: it is a directory; pass a file path")
        if not parent.is_dir():
            raise VllmPinError(f"cannot write {path}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise VllmPinError(f"cannot write {path}: permission denied; choose another path")


def default_cache_dir() -> Path:
    """~/.cache/vllm-pin, honouring XDG_CACHE_HOME."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vllm-pin"


def write_cache_file(path: Path, data: bytes) -> None:
    """Write a cache file so that concurrent readers never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
