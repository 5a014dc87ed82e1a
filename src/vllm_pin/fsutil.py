"""Safe file writes: every output checked first, then each written atomically.

A reader sees the old file or the new one, never half of one. :func:`write_all` writes a set of
files all or none: every temporary is written first, then a journal naming them, then the
renames; a run killed between two renames leaves the journal, and :func:`finish_pending` (which
the next run of the same command calls) completes the renames from it.
It is also where caches live (`default_cache_dir`), shared by the index client and the
matrix loader's cache.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from vllm_pin.errors import VllmPinError

#: the journal of a multi-file write that has not finished its renames (git-ignored)
JOURNAL = ".vllm-pin-pending.json"


def _target(path: Path) -> Path:
    """The file a write replaces: through a symlink, the file it points to (the link stays)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _write_temp(path: Path, text: str) -> str:
    """A fsynced temp file beside ``path`` holding ``text``, with the mode ``path`` has."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, _mode_for(path))
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise _cannot_write(path, exc) from None
        raise
    return tmp_name


def _cannot_write(path: Path, exc: OSError) -> VllmPinError:
    return VllmPinError(f"cannot write {path}: {exc.strerror or exc}; choose a writable location")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` through a temp file + os.replace.

    The temp file lives in the target's directory so the rename never crosses file systems;
    a symlink is written through (its target is replaced, the link kept). An existing file
    keeps its permission bits. Failures raise a one-line VllmPinError and leave ``path``
    untouched.
    """
    path = _target(path)
    tmp_name = _write_temp(path, text)
    try:
        os.replace(tmp_name, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise _cannot_write(path, exc) from None


def write_all(files: Mapping[Path, str | None], journal_dir: Path, command: str) -> None:
    """Write every file (``None``: delete it) or none of them.

    Every target is checked first, then every temporary written; any failure there removes
    the temporaries and leaves every target byte-identical. The journal in ``journal_dir``
    (which must hold every target) marks the point after which the write completes: if the
    renames are cut short, ``command`` (which calls :func:`finish_pending`) finishes them.
    """
    targets = {_target(path): text for path, text in files.items()}
    check_writable(targets)
    for path in targets:
        _remove_stale_temps(path)
    temps: dict[Path, str | None] = {}
    try:
        for path, text in targets.items():
            temps[path] = None if text is None else _write_temp(path, text)
        _write_journal(journal_dir, temps)
    except BaseException:
        for tmp in temps.values():
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        raise
    try:
        _apply(journal_dir, temps)
    except OSError as exc:
        raise VllmPinError(
            f"cannot finish writing {journal_dir} ({exc.strerror or exc}); the files are out "
            f"of step until `{command}` runs again, which completes the write from "
            f"{journal_dir / JOURNAL}"
        ) from None


def finish_pending(journal_dir: Path) -> list[Path]:
    """Complete a multi-file write that a kill cut short; the files it replaced (or none)."""
    journal = journal_dir / JOURNAL
    try:
        raw = json.loads(journal.read_bytes())
        temps = {
            journal_dir / target: None if tmp is None else str(journal_dir / tmp)
            for target, tmp in raw
        }
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError) as exc:
        raise VllmPinError(
            f"{journal} is unreadable ({exc}); check that the files it lists are complete, "
            "then delete it"
        ) from None
    try:
        _apply(journal_dir, temps)
    except OSError as exc:
        raise VllmPinError(f"cannot finish the write {journal} records: {exc}") from None
    return list(temps)


def _write_journal(journal_dir: Path, temps: Mapping[Path, str | None]) -> None:
    rows = [
        [os.path.relpath(target, journal_dir), tmp and os.path.relpath(tmp, journal_dir)]
        for target, tmp in temps.items()
    ]
    tmp = _write_temp(journal_dir / JOURNAL, json.dumps(rows, indent=0) + "\n")
    os.replace(tmp, journal_dir / JOURNAL)
    _fsync_dir(journal_dir)


def _apply(journal_dir: Path, temps: Mapping[Path, str | None]) -> None:
    """The renames (and deletions) a journal records; each is a no-op once done."""
    for target, tmp in temps.items():
        if tmp is None:
            target.unlink(missing_ok=True)
        elif os.path.exists(tmp):
            os.replace(tmp, target)
    for directory in {target.parent for target in temps}:
        _fsync_dir(directory)
    (journal_dir / JOURNAL).unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_stale_temps(path: Path) -> None:
    """Temporaries of ``path`` that a killed run left before it wrote its journal."""
    parent = path.parent if str(path.parent) else Path(".")
    for stale in parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


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
