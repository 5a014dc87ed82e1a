"""The facts of a host that decide which vLLM runs on it, and how to read them here.

:class:`Host` is plain data (a web form can build one); :func:`detect_host` reads this
machine: the NVIDIA driver and each GPU's compute capability from ``nvidia-smi``, glibc from
``os.confstr``, the CPU machine and this Python.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from vllm_pin.errors import VllmPinError
from vllm_pin.hostinfo import nvidia_smi
from vllm_pin.in_env.inspect_env import glibc_version
from vllm_pin.matrix.builds import parse_sm
from vllm_pin.names import MACHINES

__all__ = ["Host", "detect_host", "parse_gpu", "parse_nvidia_smi"]


@dataclass(frozen=True)
class Host:
    """What fit compares releases with. ``None`` = not known (that check is skipped).

    ``gpus`` are ``sm_XX`` names, one per GPU; no GPUs and no driver is a CPU-only host.
    """

    machine: str
    python: Version
    glibc: Version | None = None
    driver: str | None = None  # as NVIDIA writes it (535.104.05); compared as a Version
    gpus: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.driver is not None:
            parse_version("driver", self.driver)
        if self.machine not in MACHINES:
            raise VllmPinError(
                f"machine {self.machine!r}: vLLM has Linux wheels for {', '.join(MACHINES)} only"
            )
        for gpu in self.gpus:
            parse_gpu(gpu)

    @classmethod
    def parse(
        cls,
        machine: str,
        python: str,
        glibc: str = "",
        driver: str = "",
        gpus: Sequence[str] = (),
    ) -> Host:
        """A host from text (a form, a JSON body); "" = unknown. Never reads this machine."""
        return cls(
            machine=machine,
            python=parse_version("python", python),
            glibc=parse_version("glibc", glibc) if glibc else None,
            driver=driver or None,
            gpus=tuple(parse_gpu(g) for g in gpus),
        )

    @property
    def driver_version(self) -> Version | None:
        return Version(self.driver) if self.driver is not None else None

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus) or self.driver is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "python": str(self.python),
            "glibc": str(self.glibc) if self.glibc else None,
            "driver": self.driver,
            "gpus": list(self.gpus),
        }

    def describe(self) -> str:
        gpus = ", ".join(self.gpus) or "no NVIDIA GPU"
        driver = f"driver {self.driver}" if self.driver else "no driver"
        glibc = f"glibc {self.glibc}" if self.glibc else "glibc unknown"
        return f"{self.machine}, Python {self.python}, {glibc}, {driver}, {gpus}"


def parse_gpu(text: str) -> str:
    """``sm_120``, ``sm120``, ``12.0`` or ``120`` -> ``sm_120``; VllmPinError otherwise."""
    raw = text.strip().lower()
    if "." in raw:
        major, _, minor = raw.partition(".")
        raw = f"{major}{minor}"
    raw = raw.removeprefix("sm_").removeprefix("sm")
    name = f"sm_{raw}"
    if not raw.isdigit() or len(raw) < 2 or parse_sm(name) is None:
        raise VllmPinError(f"GPU {text!r} is not a compute capability; write sm_86, sm_120 or 12.0")
    return name


def parse_version(what: str, text: str) -> Version:
    """A version given on the command line, or one line naming what was expected."""
    try:
        return Version(text.strip())
    except InvalidVersion:
        raise VllmPinError(f"{what} {text!r} is not a version (e.g. {_EXAMPLES[what]})") from None


_EXAMPLES = {"driver": "535.104.05", "glibc": "2.31", "python": "3.12"}


def parse_nvidia_smi(out: str) -> tuple[str | None, tuple[str, ...]]:
    """``driver_version, compute_cap`` lines -> (driver, sm list); blanks and junk skipped."""
    driver: str | None = None
    gpus: list[str] = []
    for line in out.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 2:
            continue
        try:
            Version(fields[0])
            gpus.append(parse_gpu(fields[1]))
            driver = driver or fields[0]
        except (InvalidVersion, VllmPinError):
            continue
    return driver, tuple(gpus)


def _nvidia_smi() -> tuple[str | None, tuple[str, ...]]:
    out = nvidia_smi("driver_version", "compute_cap")
    return (None, ()) if out is None else parse_nvidia_smi(out)


def detect_host(
    *,
    machine: str | None = None,
    python: Version | None = None,
    glibc: Version | None = None,
    driver: str | None = None,
    gpus: tuple[str, ...] | None = None,
    no_gpu: bool = False,
) -> Host:
    """This machine's facts; each fact given here is used instead of reading it.

    ``no_gpu`` describes a CPU-only host (nvidia-smi is then not run).
    """
    if no_gpu:
        found: tuple[str | None, tuple[str, ...]] = (None, ())
    elif driver is None or gpus is None:
        found = _nvidia_smi()
    else:
        found = (driver, gpus)
    libc = glibc_version() if glibc is None else None
    return Host(
        machine=machine or platform.machine(),
        python=python or Version(f"{sys.version_info.major}.{sys.version_info.minor}"),
        glibc=glibc or (Version(libc) if libc else None),
        driver=None if no_gpu else driver or found[0],
        gpus=() if no_gpu else (found[1] if gpus is None else gpus),
    )
