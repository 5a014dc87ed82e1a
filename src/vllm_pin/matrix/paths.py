"""Where the matrix files live: the checkout's ``matrix/``, or the copy installed with it."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["MATRIX_ENV", "PACKAGE_DIR", "default_matrix_dir", "default_timeline_path"]

MATRIX_ENV = "VLLM_PIN_MATRIX_DIR"
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # src/vllm_pin


def default_matrix_dir() -> Path:
    """``$VLLM_PIN_MATRIX_DIR``, else the checkout's ``matrix/``, else the installed copy."""
    env = os.environ.get(MATRIX_ENV)
    if env:
        return Path(env)
    checkout = PACKAGE_DIR.parent.parent / "matrix"
    if (checkout / "curated.toml").is_file():
        return checkout
    return PACKAGE_DIR / "data"


def default_timeline_path() -> Path:
    """matrix/timeline.toml of the matrix the loader uses ($VLLM_PIN_MATRIX_DIR honoured)."""
    return default_matrix_dir() / "timeline.toml"
