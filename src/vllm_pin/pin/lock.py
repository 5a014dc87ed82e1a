"""Hashed, fully transitive locks through `uv pip compile`, for any target platform.

uv resolves for a platform and Python it is told (``--python-platform``/``--python-version``)
rather than the machine it runs on, so a lock for Linux x86_64 + CPython 3.12 can be made
anywhere. uv does not read pip's configuration: every index and find-links source is passed
explicitly (:class:`vllm_pin.index.settings.IndexConfig`). ``--exclude-newer`` bounds what the
resolver sees by upload time, so a lock of an old release is made from the packages of its
day. Network or resolver failures become one-line errors and nothing is written.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vllm_pin.errors import VllmPinError
from vllm_pin.index.settings import IndexConfig

PYTORCH_INDEX_HINT = "download.pytorch.org"
# uv's words for "the index could not be reached", as opposed to "no solution exists"
_NETWORK_WORDS = (
    "Failed to fetch",
    "error sending request",
    "dns error",
    "client error (Connect)",
    "timed out",
    "Request failed after",
    "Could not connect",
)


class LockError(VllmPinError):
    """uv could not produce a lock (no solution, no network, no uv)."""


@dataclass(frozen=True)
class Target:
    """The interpreter and platform a lock is made for."""

    python_version: str  # "3.12"
    python_platform: str  # uv's name, e.g. "x86_64-manylinux_2_28"


def find_uv() -> list[str]:
    """The uv beside this interpreter (the venv's), else `uv` on PATH, else `python -m uv`."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    on_path = shutil.which("uv")
    if on_path:
        return [on_path]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    raise LockError("uv not found; install it (pip install uv, or vllm-pin[provision])")


def compile_lock(
    requirements: str,
    target: Target,
    sources: IndexConfig,
    *,
    overrides: Sequence[str] = (),
    exclude_newer: str = "",
    exclude_newer_packages: Sequence[str] = (),
    timeout: float = 600.0,
    uv: Sequence[str] | None = None,
) -> str:
    """Resolve ``requirements`` (requirement-file text) to a hashed lock body.

    ``overrides`` are uv override lines (e.g. ``torchvision; sys_platform == "never"`` drops
    a dependency a release declares). ``exclude_newer`` (an RFC 3339 time, "" = none)
    hides index files uploaded after it, ``exclude_newer_packages`` (``name=time``) set
    other cutoffs for single packages; wheels from find-links directories carry no upload
    time and uv keeps them (measured with uv 0.13.9). The returned text has uv's ``# via``
    annotations and no header: callers add their own so the file names the command that
    regenerates it.
    """
    args = [
        "--generate-hashes",
        "--no-header",
        "--python-version",
        target.python_version,
        "--python-platform",
        target.python_platform,
        *sources.uv_args(),
        *(["--exclude-newer", exclude_newer] if exclude_newer else []),
        *(arg for p in exclude_newer_packages for arg in ("--exclude-newer-package", p)),
    ]
    with tempfile.TemporaryDirectory(prefix="vllm-pin-lock-") as tmp:
        req_file = Path(tmp) / "requirements.in"
        req_file.write_text(requirements, encoding="utf-8")
        if overrides:
            override_file = Path(tmp) / "overrides.txt"
            override_file.write_text("\n".join(overrides) + "\n", encoding="utf-8")
            args += ["--override", str(override_file)]
        out = _run_uv(["pip", "compile", str(req_file), *args], timeout, uv)
    # uv names the input file it was given ("# via -r /tmp/.../requirements.in")
    return out.replace(str(req_file), "requirements-vllm.txt")


def check_together(
    requirements: Sequence[str],
    target: Target,
    sources: IndexConfig,
    *,
    timeout: float = 60.0,
    uv: Sequence[str] | None = None,
) -> str | None:
    """Resolve ``requirements`` together with ``--no-deps``; uv's reason if unsatisfiable.

    Returns None when a solution exists. Raises LockError when uv could not answer (no
    network, no uv), so callers can fall back to an offline check and say so.
    """
    args = ["--no-deps", "--no-header", "--quiet", "--python-version", target.python_version]
    args += ["--python-platform", target.python_platform, *sources.uv_args()]
    try:
        _run_uv(["pip", "compile", "-", *args], timeout, uv, stdin="\n".join(requirements))
    except _Unsatisfiable as exc:
        return str(exc)
    return None


class _Unsatisfiable(LockError):
    """uv ran and proved no solution exists."""


def _run_uv(
    args: list[str], timeout: float, uv: Sequence[str] | None, stdin: str | None = None
) -> str:
    # a missing target interpreter must not make uv download one (slow, or no network)
    command = [*(uv or find_uv()), *args, "--no-python-downloads"]
    env = {**os.environ, "UV_NO_PROGRESS": "1", "NO_COLOR": "1"}
    try:
        proc = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LockError(
            f"uv pip compile took longer than {timeout:.0f}s; check the network or raise --timeout"
        ) from None
    except OSError as exc:
        raise LockError(f"cannot run uv ({command[0]}): {exc.strerror or exc}") from None
    if proc.returncode == 0:
        return proc.stdout
    reason = _one_line(proc.stderr)
    if any(word in proc.stderr for word in _NETWORK_WORDS):
        raise LockError(f"uv could not reach a package index: {_network_reason(proc.stderr)}")
    if "unsatisfiable" in proc.stderr or "No solution found" in proc.stderr:
        raise _Unsatisfiable(f"uv found no solution: {reason}")
    raise LockError(f"uv pip compile failed: {reason}")


def _network_reason(stderr: str) -> str:
    """The URL that failed and the root cause, without uv's timings (stable in SKIPPED.toml)."""
    url = re.search(r"Failed to fetch: (\S+)", stderr) or re.search(r"for url \((\S+)\)", stderr)
    causes = [ln.strip()[len("cause: ") :] for ln in stderr.splitlines() if "cause:" in ln]
    where = url.group(1).rstrip(")") if url else "the index"
    why = causes[-1] if causes else _one_line(stderr)
    hint = (
        "pass --find-links DIR holding its wheels"
        if PYTORCH_INDEX_HINT in where
        else "check the network or pass --index-url/--find-links for a reachable mirror"
    )
    return f"{where} ({why}); {hint}"


def _one_line(stderr: str) -> str:
    """uv's multi-line report folded onto one line, without the hint lines."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    kept = [ln for ln in lines if not ln.startswith(("hint:", "warning:"))] or lines
    text = " ".join(kept)
    return text[:600] + (" ..." if len(text) > 600 else "")
