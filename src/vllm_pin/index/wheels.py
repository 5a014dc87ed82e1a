"""Wheel filenames: their tags, the release they belong to, and the wheel an installer picks.

The matrix records one representative wheel per release and machine (whose metadata is read),
so the choice mirrors installers' preference rather than, say, the first file listed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from vllm_pin.index.pypi import IndexFile
from vllm_pin.matrix.core_metadata import MANYLINUX_TAG, manylinux_glibc, version_or_none
from vllm_pin.names import MACHINES

#: the machines the matrix has rows for, in the order they are written
_PY_TAG = re.compile(r"^(?:cp|py)(?P<major>\d)(?P<minor>\d*)$")


@dataclass(frozen=True)
class Wheel:
    """A wheel file with its tags parsed once."""

    file: IndexFile
    build: tuple[int, str] | tuple[()]
    python_tags: tuple[str, ...]
    abi_tag: str
    platform_tag: str

    @property
    def machine(self) -> str:
        """x86_64/aarch64 for manylinux wheels; "" for any other platform."""
        arches = {
            m.group("arch") for m in map(MANYLINUX_TAG.match, self.platform_tag.split(".")) if m
        }
        return next(iter(arches)) if len(arches) == 1 else ""

    @property
    def min_glibc(self) -> Version:
        """The lowest glibc any of the wheel's manylinux tags accepts."""
        return min(g for g in map(manylinux_glibc, self.platform_tag.split(".")) if g is not None)

    @property
    def newest_python(self) -> Version:
        versions = [Version(f"{m['major']}.{m['minor'] or 0}") for m in self._py_matches()]
        return max(versions, default=Version("0"))

    def _py_matches(self) -> list[re.Match[str]]:
        return [m for m in map(_PY_TAG.match, self.python_tags) if m]

    def rank(self) -> tuple[Any, ...]:
        """Installers' preference: not yanked, highest build, newest CPython, not free-threaded."""
        return (
            not self.file.yanked,
            self.build,
            self.newest_python,
            not self.abi_tag.endswith("t"),
            self.file.filename,
        )


def parse_wheel(f: IndexFile) -> Wheel | None:
    """Tags of a wheel file; None for anything that is not a well-formed wheel name."""
    try:
        _, _, build, _ = parse_wheel_filename(f.filename)
    except InvalidWheelFilename:
        return None
    python, abi, platform = f.filename[: -len(".whl")].split("-")[-3:]
    return Wheel(f, build, tuple(sorted(python.split("."))), abi, platform)


def python_tag_key(tag: str) -> tuple[Version, str]:
    """Sort key of a python tag by the version it names (cp39 before cp310)."""
    m = _PY_TAG.match(tag)
    return (Version(f"{m['major']}.{m['minor'] or 0}") if m else Version("0"), tag)


def file_version(f: IndexFile) -> Version | None:
    """The version a file belongs to (wheel or sdist); None for other files."""
    if f.filename.endswith(".whl"):
        parts = f.filename.split("-")
        return version_or_none(parts[1]) if len(parts) in (5, 6) else None
    try:
        return parse_sdist_filename(f.filename)[1]
    except (InvalidSdistFilename, InvalidVersion):
        return None


def group_by_version(files: Iterable[IndexFile]) -> dict[Version, list[IndexFile]]:
    """Files of a project per release version."""
    out: dict[Version, list[IndexFile]] = defaultdict(list)
    for f in files:
        v = file_version(f)
        if v is not None:
            out[v].append(f)
    return dict(out)


def representatives(files: Sequence[IndexFile]) -> dict[str, tuple[Wheel, list[Wheel]]]:
    """Per machine: the wheel an installer would pick, and all wheels for that machine."""
    by_machine: dict[str, list[Wheel]] = defaultdict(list)
    for w in filter(None, map(parse_wheel, files)):
        if w.machine in MACHINES:
            by_machine[w.machine].append(w)
    return {m: (max(ws, key=Wheel.rank), ws) for m, ws in sorted(by_machine.items())}


def package_wheel(files: Sequence[IndexFile]) -> Wheel | None:
    """Among one version's files: the x86_64 Linux wheel for the newest CPython; a pure-Python
    wheel otherwise."""
    wheels = list(filter(None, map(parse_wheel, files)))
    linux = [w for w in wheels if w.machine == "x86_64"]
    pure = [w for w in wheels if w.platform_tag == "any"]
    pool = linux or pure
    return max(pool, key=Wheel.rank) if pool else None
