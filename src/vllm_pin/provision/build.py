"""Build ``.envs/<name>`` with uv from a lock; a stamp makes a warm re-run skip the build.

The stamp names the lock, its sha256 and the Python; while all three match (and the venv's
python exists) the venv is reused, so a re-run reaches the smoke test in seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vllm_pin.errors import VllmPinError
from vllm_pin.fsutil import atomic_write_text
from vllm_pin.index import settings as indexes
from vllm_pin.pin.lock import find_uv
from vllm_pin.provision.lock import lock_sha256, without_sources
from vllm_pin.provision.report import seconds_since

STAMP_FILE = "vllm-pin-stamp.json"


def build_env(
    venv: Path,
    lock: Path,
    python: Path,
    index: indexes.IndexConfig,
    *,
    uv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Create ``venv`` with uv and sync it to ``lock``, unless its stamp says it already is.

    The stamp is written last, so an interrupted build is rebuilt from scratch next time.
    """
    start = time.perf_counter()
    digest = lock_sha256(lock)
    stamp_path = venv / STAMP_FILE
    wanted = {"lock": str(lock), "lock_sha256": digest, "python": str(python)}
    if not force and _read_stamp(stamp_path) == wanted and (venv / "bin" / "python").exists():
        return {"status": "reused", "seconds": seconds_since(start), "lock_sha256": digest}
    if venv.exists():
        _remove_venv(venv)
    uv_cmd = list(uv or find_uv())
    run_env = {**os.environ, **(env or {}), "UV_NO_PROGRESS": "1"}
    venv.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{venv.name}-", dir=venv.parent) as tmp:
        source = lock
        if index.uv_args():
            source = Path(tmp) / lock.name
            source.write_text(without_sources(lock.read_text(encoding="utf-8")), encoding="utf-8")
        venv_python = str(venv / "bin" / "python")
        steps = [
            [*uv_cmd, "venv", "--quiet", "--python", str(python), str(venv)],
            [*uv_cmd, "pip", "sync", "--python", venv_python, *index.uv_args(), str(source)],
        ]
        for command in steps:
            proc = subprocess.run(command, env=run_env, check=False, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                return {
                    "status": "failed",
                    "seconds": seconds_since(start),
                    "lock_sha256": digest,
                    "error": f"`{' '.join(command)}` exited {proc.returncode}",
                }
    atomic_write_text(stamp_path, json.dumps(wanted, indent=2, sort_keys=True) + "\n")
    return {"status": "built", "seconds": seconds_since(start), "lock_sha256": digest}


def _read_stamp(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _remove_venv(venv: Path) -> None:
    """Delete a previous build; refuse anything that is not a venv (never a stray directory)."""
    if not (venv / "pyvenv.cfg").is_file() and any(venv.iterdir()):
        raise VllmPinError(f"{venv} exists and is not a virtual environment; move it away")
    shutil.rmtree(venv)
