"""The rows of releases.toml: one per release (with a table per machine) and one per pinned
torch-family package version, built from index files and the metadata read from them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from packaging.specifiers import SpecifierSet

from vllm_pin.index.pypi import IndexFile
from vllm_pin.index.wheels import MACHINES, Wheel, python_tag_key
from vllm_pin.matrix.core_metadata import (
    FAMILY,
    Metadata,
    cuda_of,
    family_pins,
    requirement_name,
    torch_requirement,
)
from vllm_pin.refresh.glibc_scan import WheelGlibc


def _seconds(upload_time: str) -> str:
    m = re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", upload_time)
    return m.group(0) + "Z" if m else upload_time


def release_entry(
    files: Sequence[IndexFile],
    reps: Mapping[str, tuple[Wheel, list[Wheel]]],
    meta: Mapping[str, tuple[Metadata, str]],
    glibc: Mapping[str, WheelGlibc],
) -> dict[str, Any]:
    """A release's row: index facts of its files, then each machine's representative wheel."""
    has_wheel = any(f.filename.endswith(".whl") for f in files)
    yanked = all(f.yanked for f in files)
    entry: dict[str, Any] = {"status": "wheel" if has_wheel else "sdist-only", "yanked": yanked}
    if yanked:
        entry["yanked-reason"] = next((f.yanked_reason for f in files if f.yanked_reason), "")
    entry["upload-time"] = min(
        (_seconds(f.upload_time) for f in files if f.upload_time), default=""
    )
    if meta:
        first = meta.get("x86_64") or next(iter(meta.values()))
        entry["requires-python"] = first[0].requires_python
    else:
        declared = sorted({f.requires_python for f in files if f.requires_python})
        entry["requires-python"] = str(SpecifierSet(declared[0])) if declared else ""
    platforms: dict[str, Any] = {}
    for machine in MACHINES:
        if machine not in reps:
            continue
        rep, all_wheels = reps[machine]
        md, source = meta[machine]
        platforms[machine] = {
            "wheel": rep.file.filename,
            "url": rep.file.url,
            "sha256": rep.file.sha256,
            "size": rep.file.size,
            "python-tags": sorted(
                {t for w in all_wheels for t in w.python_tags}, key=python_tag_key
            ),
            "abi-tag": rep.abi_tag,
            "platform-tag": rep.platform_tag,
            "min-glibc": str(rep.min_glibc),
            **glibc_fields(rep, glibc[machine]),
            "metadata-source": source,
            "requires-python": md.requires_python,
            "pins": family_pins(md.requires_dist),
            "requires-dist": list(md.requires_dist),
        }
    if platforms:
        entry["platforms"] = platforms
    return entry


def glibc_fields(wheel: Wheel, scan: WheelGlibc) -> dict[str, Any]:
    """The `glibc-floor*` keys of a platform row: what its libraries need (source "elf"),
    or the manylinux tag's glibc when no library was read (source "tag")."""
    floor = scan.floor
    out: dict[str, Any] = (
        {"glibc-floor": str(wheel.min_glibc), "glibc-floor-source": "tag"}
        if floor is None
        else {
            "glibc-floor": str(floor[0]),
            "glibc-floor-source": "elf",
            "glibc-floor-library": floor[1],
        }
    )
    if scan.unread:
        out["glibc-unread"] = list(scan.unread)
    return out


def package_row(name: str, md: Metadata, source: str, wheel: Wheel) -> dict[str, Any]:
    """A `[packages.NAME."VERSION"]` row: the requirements that matter for torch compatibility."""
    related = [
        r
        for r in md.requires_dist
        if requirement_name(r) in FAMILY or requirement_name(r).startswith(("nvidia-", "cuda-"))
    ]
    torch_req = torch_requirement(md.requires_dist)
    row: dict[str, Any] = {"requires-python": md.requires_python}
    if name == "torch":
        row["cuda"] = cuda_of(md.requires_dist)
    row["torch-requires"] = torch_req or ""
    row["requires-dist"] = related
    row["metadata-source"] = source
    row["wheel"] = wheel.file.filename
    row["sha256"] = wheel.file.sha256
    return row
