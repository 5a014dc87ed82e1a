"""Core metadata (METADATA) as the matrix records it: normalised requirements, the torch-family
pins among them, and the CUDA version a torch build pins.

Everything goes through `packaging`, so `torch (==2.3.1)` and `torch==2.3.1` are one fact; strings
packaging rejects are reported as problems, never guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from vllm_pin.names import TORCH_FAMILY

#: family members whose own metadata is read for every version a release pins with ==
PACKAGES = tuple(name for name in TORCH_FAMILY if name != "triton")
#: anomalies about a METADATA file itself (they cannot be re-derived from the document)
METADATA_PROBLEMS = ("Requires-Python", "Requires-Dist")
_CUDA_RUNTIME = re.compile(r"^nvidia-cuda-runtime(?:-cu\d+)?$")
#: one manylinux platform tag: legacy (manylinux1/2010/2014) or PEP 600 (manylinux_X_Y)
MANYLINUX_TAG = re.compile(
    r"^manylinux(?:(?P<legacy>1|2010|2014)|_(?P<major>\d+)_(?P<minor>\d+))_(?P<arch>\w+)$"
)
_LEGACY_GLIBC = {"1": "2.5", "2010": "2.12", "2014": "2.17"}


def manylinux_glibc(platform_tag: str) -> Version | None:
    """The glibc one platform tag claims (``manylinux1_x86_64`` -> 2.5); None for others."""
    m = MANYLINUX_TAG.match(platform_tag)
    if m is None:
        return None
    legacy = m.group("legacy")
    return Version(_LEGACY_GLIBC[legacy] if legacy else f"{m['major']}.{m['minor']}")


def wheel_glibc(filename: str) -> Version | None:
    """The lowest glibc any manylinux tag of a wheel file name (or a WHEEL ``Tag:`` value)
    accepts; None without one."""
    platforms = filename.removesuffix(".whl").rsplit("-", 1)[-1].split(".")
    found = [g for g in map(manylinux_glibc, platforms) if g is not None]
    return min(found) if found else None


@cache
def parse_requirement(text: str) -> Requirement:
    """Parse a requirement once: the same few thousand strings recur across releases."""
    return Requirement(text)


@cache
def _normalised(text: str) -> str:
    """The canonical spelling of a requirement (`torch (==2.3.1)` -> `torch==2.3.1`), once."""
    return str(parse_requirement(text))


@cache
def requirement_name(text: str) -> str:
    """The canonical distribution name a requirement string names."""
    return str(canonicalize_name(parse_requirement(text).name))


@dataclass(frozen=True)
class Metadata:
    """The parts of a METADATA file the matrix records, normalised through packaging."""

    requires_python: str
    requires_dist: tuple[str, ...]
    provides_extra: tuple[str, ...]
    problems: tuple[str, ...]


def parse_metadata(data: bytes) -> Metadata:
    """Parse METADATA headers; strings packaging rejects are reported, not recorded."""
    # deferred: the email package costs ~15 ms of import, and only refresh parses METADATA
    # (pin and verify import this module for exact_pin and linux_markers)
    from email.parser import BytesHeaderParser
    from email.policy import compat32

    msg = BytesHeaderParser(policy=compat32).parsebytes(data)
    problems: list[str] = []
    raw_python = " ".join(str(msg.get("Requires-Python", "")).split())
    try:
        requires_python = str(SpecifierSet(raw_python))
    except InvalidSpecifier:
        problems.append(f"{METADATA_PROBLEMS[0]} {raw_python!r} is not a valid specifier")
        requires_python = ""
    reqs = []
    for raw in msg.get_all("Requires-Dist") or []:
        text = " ".join(str(raw).split())
        try:
            reqs.append(_normalised(text))
        except InvalidRequirement:
            problems.append(f"{METADATA_PROBLEMS[1]} {text!r} is not a valid requirement")
    extras = sorted({str(canonicalize_name(str(e))) for e in msg.get_all("Provides-Extra") or []})
    return Metadata(requires_python, tuple(sorted(set(reqs))), tuple(extras), tuple(problems))


def family_pins(requires_dist: Iterable[str]) -> list[str]:
    """The torch-family requirements among a distribution's Requires-Dist."""
    return [r for r in requires_dist if requirement_name(r) in TORCH_FAMILY]


def linux_markers(machine: str) -> dict[str, str]:
    """Marker variables that say "Linux on ``machine``" (the rest: this interpreter's)."""
    return {"platform_machine": machine, "platform_system": "Linux", "sys_platform": "linux"}


@cache
@lru_cache(maxsize=4096)  # an index page names each version in ~20 wheel names
def version_or_none(text: str) -> Version | None:
    """A Version, or None for text that is not one (other packages' metadata can be odd)."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


def exact_pin(req: Requirement) -> Version | None:
    """The version of an `==X` requirement (no wildcard); None otherwise."""
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return version_or_none(specs[0].version)
    return None


def cuda_of(requires_dist: Iterable[str]) -> str:
    """CUDA major.minor of a torch build, from its CUDA runtime pin; "" for a CPU-only build.

    Up to CUDA 12 torch pins nvidia-cuda-runtime-cu1X; CUDA 13 builds pin
    cuda-toolkit[cudart,...] (or nvidia-cuda-runtime).
    """
    for raw in requires_dist:
        req = parse_requirement(raw)
        name = requirement_name(raw)
        if _CUDA_RUNTIME.match(name) or (name == "cuda-toolkit" and "cudart" in req.extras):
            version = exact_pin(req)
            if version is not None:
                return f"{version.major}.{version.minor}"
    return ""


def torch_requirement(requires_dist: Iterable[str]) -> str | None:
    """The torch specifier a package declares ("" = any torch); None when it declares none."""
    specs = [
        str(parse_requirement(r).specifier) for r in requires_dist if requirement_name(r) == "torch"
    ]
    return ",".join(sorted(set(specs))) if specs else None
