"""One gpu-sweep configuration in a process of its own, under a timeout.

Each process gets its own process group, so a kill on timeout also takes the engine process
vLLM started, and its own vLLM cache, so no run reuses another's compiled graphs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vllm_pin.gpu.plan import Config, Knobs
from vllm_pin.gpu.work_dir import WorkDir
from vllm_pin.in_env.smoke import last_log_line
from vllm_pin.matrix.paths import PACKAGE_DIR

#: how much of the end of a log is read for its last line
_TAIL_BYTES = 8192
PROMPTS = ("hello world", "the quick brown fox jumps over the lazy dog")
MAX_TOKENS = 8
#: environment every configuration runs with (on top of the caller's, minus its VLLM_*)
BASE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "PYTHONUNBUFFERED": "1",
}


def child_env(parent: Mapping[str, str], extra: Mapping[str, str], cache: Path) -> dict[str, str]:
    """The caller's environment without its VLLM_* settings, plus the sweep's own.

    Each configuration gets its own vLLM cache so no run reuses another's compiled graphs
    (compile times stay comparable, and two runs of one config are really independent).
    """
    env = {k: v for k, v in parent.items() if not k.startswith("VLLM_")}
    package_root = str(PACKAGE_DIR.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, parent.get("PYTHONPATH")) if p)
    env.update(BASE_ENV)
    env["VLLM_CACHE_ROOT"] = str(cache)
    env.update(extra)
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@dataclass
class Running:
    """A configuration's process, started at ``started`` (monotonic) with ``timeout`` seconds."""

    config: Config
    proc: subprocess.Popen[bytes]
    started: float
    timeout: float
    #: the configuration's log, which its process writes as it runs
    log: Path
    timed_out: bool = False

    def last_log_line(self) -> str:
        """The last line its process has logged so far (what it is waiting for)."""
        with self.log.open("rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - _TAIL_BYTES))
            return last_log_line(fh.read().decode("utf-8", "replace"))

    def finished(self) -> bool:
        """Whether it has ended; past its timeout, its process group is killed first."""
        if self.proc.poll() is not None:
            return True
        if time.monotonic() - self.started > self.timeout:
            _kill_group(self.proc)
            self.proc.wait()
            self.timed_out = True
            return True
        return False

    def stop(self) -> tuple[int | None, float]:
        """Exit status (None after a timeout) and seconds it ran; kills what it left behind.

        vLLM's engine process can outlive the process that started it.
        """
        wall = time.monotonic() - self.started
        code = None if self.timed_out else self.proc.returncode
        _kill_group(self.proc)
        return code, wall


def start(
    config: Config, knobs: Knobs, work: WorkDir, base_kwargs: Mapping[str, Any], timeout: float
) -> Running:
    """Start ``config``'s process (vllm_pin.in_env.gpu_worker), its output going to the work dir."""
    raw_path = work.raw(config.label)
    raw_path.unlink(missing_ok=True)
    spec = {
        "model_dir": str(work.model_dir),
        "llm_kwargs": knobs.llm_kwargs(config, base_kwargs),
        "prompts": list(PROMPTS),
        "max_tokens": MAX_TOKENS,
        "result": str(raw_path),
    }
    spec_path = work.spec(config.label)
    spec_path.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    env = child_env(os.environ, knobs.env(config), work.cache(config.label))
    with work.log(config.label).open("wb") as log:
        log.write(f"# {config.label}: {json.dumps(spec)} env {knobs.env(config)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "vllm_pin.in_env.gpu_worker", str(spec_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return Running(config, proc, time.monotonic(), timeout, work.log(config.label))
