"""What this machine says about its NVIDIA GPUs, asked once in one way (``nvidia-smi``)."""

from __future__ import annotations

import shutil
import subprocess

__all__ = ["nvidia_smi"]


def nvidia_smi(*fields: str, timeout: float = 30) -> str | None:
    """``nvidia-smi --query-gpu=FIELDS --format=csv,noheader`` output, one line per GPU;
    None where there is no nvidia-smi or it fails (a host without an NVIDIA GPU, quietly)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None
