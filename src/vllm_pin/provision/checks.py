"""Check a built venv from outside it: `vllm-pin verify`, then smoke.py in the venv's Python.

Both run as subprocesses without vllm-pin's own ``VLLM_PIN_*`` settings; a crash, a timeout
or a missing report is a failure, never a pass.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vllm_pin.in_env import smoke as in_env_smoke
from vllm_pin.matrix.paths import default_matrix_dir
from vllm_pin.provision.report import seconds_since

SMOKE_TIMEOUT_S = 1800.0
VERIFY_TIMEOUT_S = 600.0
# distributions smoke.py imports when the lock pins them
SMOKE_IMPORTS = ("torchvision", "torchaudio", "xformers", "flashinfer-python")


def run_verify(
    venv: Path, *, without: Sequence[str] = (), timeout: float = VERIFY_TIMEOUT_S
) -> dict[str, Any]:
    """`vllm-pin verify --python <venv>`; its exit status decides (0 ok, 1 problems).

    ``without`` names the dependencies the lock leaves out on purpose (env.toml ``without``),
    which verify must not report as missing.
    """
    command = [sys.executable, "-m", "vllm_pin", "verify", "--python", str(venv / "bin" / "python")]
    command += ["--matrix", str(default_matrix_dir())]  # as an option: VLLM_PIN_* are removed
    command += [a for name in without for a in ("--without", name)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [*command, "--format", "json"],
            env=without_tool_vars(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return {
            "status": "failed",
            "seconds": seconds_since(start),
            "error": f"timed out ({timeout:g}s)",
        }
    result: dict[str, Any] = {
        "status": "passed" if proc.returncode == 0 else "failed",
        "exit_code": proc.returncode,
        "seconds": seconds_since(start),
        "command": " ".join(command),
    }
    try:
        result["report"] = json.loads(proc.stdout)
    except ValueError:
        result["output"] = (proc.stdout + proc.stderr).strip()[-4000:]
    if proc.returncode != 0 and proc.stderr.strip():
        result["error"] = proc.stderr.strip().splitlines()[-1]
    return result


def smoke_script() -> Path:
    """smoke.py, run by the env's own interpreter (vllm-pin is not installed there)."""
    return Path(in_env_smoke.__file__)


def run_smoke(
    venv: Path,
    *,
    device: str,
    require: Sequence[str],
    require_generate: bool,
    smoke_env: Sequence[str] = (),
    llm_kwargs: str | None = None,
    timeout: float = SMOKE_TIMEOUT_S,
) -> dict[str, Any]:
    """Run smoke.py in the venv (``-I``: its own directory is not put on sys.path).

    The smoke test's own report is returned; a crash, a timeout or a missing report is a
    failure, never a pass.
    """
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="smoke-", dir=venv) as tmp:
        report = Path(tmp) / "smoke.json"
        command = [str(venv / "bin" / "python"), "-I", str(smoke_script()), "--report", str(report)]
        command += ["--quiet", "--device", device, *(a for r in require for a in ("--require", r))]
        command += [a for e in smoke_env for a in ("--env", e)]
        command += ["--llm-kwargs", llm_kwargs] if llm_kwargs else []
        command += ["--require-generate"] if require_generate else []
        code = _run_with_timeout(command, timeout)
        try:
            result: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            result = {"steps": []}
    result["exit_code"] = code
    result["seconds"] = seconds_since(start)
    if code != 0 and (result.get("result") != "failed" or not result["steps"]):
        why = f"timed out after {timeout:g}s" if code is None else f"exited {code}"
        result["result"] = "failed"
        result["error"] = f"the smoke test {why}"
    return result


def without_tool_vars() -> dict[str, str]:
    """This process's environment without vllm-pin's own ``VLLM_PIN_*`` settings.

    They share vLLM's ``VLLM_`` prefix, so the environment under test must not see them:
    verify would flag them as variables vLLM does not know.
    """
    return {k: v for k, v in os.environ.items() if not k.startswith("VLLM_PIN_")}


def _run_with_timeout(command: Sequence[str], timeout: float) -> int | None:
    """Run in its own process group (vLLM spawns workers); kill the group on timeout."""
    env = {**without_tool_vars(), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with subprocess.Popen(
        list(command), env=env, start_new_session=True, stdin=subprocess.DEVNULL
    ) as proc:
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
