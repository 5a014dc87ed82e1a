"""The GPU and the vLLM release a gpu-sweep runs on, as its observation file cites them."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import re
import subprocess
from pathlib import Path

from packaging.version import InvalidVersion, Version

from vllm_pin.errors import VllmPinError


def gpu_info() -> tuple[str, str, str]:
    """Name, driver and compute capability of GPU 0, from nvidia-smi."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise VllmPinError(f"nvidia-smi failed ({exc}); the sweep needs an NVIDIA GPU") from None
    fields = [f.strip() for f in out.splitlines()[0].split(",")]
    if len(fields) != 3:
        raise VllmPinError(f"unexpected nvidia-smi output {out!r}")
    return fields[0], fields[1], fields[2]


def gpu_slug(name: str) -> str:
    """``NVIDIA H100 80GB HBM3`` -> ``h100``, ``NVIDIA GeForce RTX 4090`` -> ``rtx-4090``."""
    words = re.split(r"[\s_-]+", name.lower())
    kept = []
    for w in words:
        if w in ("nvidia", "geforce", "tesla"):
            continue
        if re.fullmatch(r"\d+gb|hbm\w*|pcie|sxm\w*|nvl|\d+w", w):
            break
        kept.append(re.sub(r"[^a-z0-9]", "", w))
    slug = "-".join(w for w in kept if w)
    if not slug:
        raise VllmPinError(f"cannot make a file name from GPU {name!r}; pass --gpu-slug")
    return slug


def installed_vllm() -> tuple[Version, Path]:
    """Version and package directory of the vllm this interpreter would import (not imported)."""
    try:
        version = Version(md.version("vllm"))
    except md.PackageNotFoundError:
        raise VllmPinError(
            "vllm is not installed in this interpreter; run the sweep with the python of the "
            "vLLM environment under test"
        ) from None
    except InvalidVersion as exc:
        raise VllmPinError(f"installed vllm has an invalid version: {exc}") from None
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        raise VllmPinError("vllm is installed but its package directory cannot be found")
    return version, Path(next(iter(spec.submodule_search_locations)))


def torch_version() -> str:
    """torch.__version__ (with its local label, e.g. +cu130, which the metadata may lack)."""
    try:
        return str(importlib.import_module("torch").__version__)
    except ImportError:
        return ""
