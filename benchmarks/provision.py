#!/usr/bin/env python3
"""Provisioning speed: uv from the lock (cold cache, warm cache, warm re-run) vs plain pip.

    python benchmarks/provision.py [--vllm 0.10] [--variant cuda] [--skip-pip] [--json OUT]

In one run, each into a fresh venv under .envs/bench-*/ (deleted as it goes):
  pip cold   `pip install <dist>==X` with no cache, as a user would (pip's own config applies)
  uv cold    `uv venv` + `uv pip sync <lock>` with an empty uv cache
  uv warm    the same into a new venv, cache now warm
  re-run     provisioning the warm venv again: the stamp matches, nothing is installed
Locking is done before timing (a lock is made once and committed); pip resolves every time.
Measured here on 2026-11-22 for vllm 0.10.1.1: pip cold 143 s, uv cold 33 s, uv warm 2.7 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from vllm_pin.commands._options import add_index_options, index_from  # noqa: E402
from vllm_pin.errors import VllmPinError  # noqa: E402
from vllm_pin.index.settings import IndexConfig  # noqa: E402
from vllm_pin.names import VARIANTS, Variant  # noqa: E402
from vllm_pin.provision import build as provision_build  # noqa: E402
from vllm_pin.provision import envs as provision_envs  # noqa: E402
from vllm_pin.provision import lock as provision_lock  # noqa: E402
from vllm_pin.provision import pythons as provision_pythons  # noqa: E402


def timed(label: str, func: Callable[[], object]) -> float:
    """Wall-clock seconds of ``func``; an exception or a failed status aborts the benchmark."""
    print(f"bench: {label} ...", flush=True)
    start = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - start
    if isinstance(result, dict) and result.get("status") == "failed":
        raise VllmPinError(f"{label} failed: {result.get('error')}")
    print(f"bench: {label}: {seconds:.1f}s", flush=True)
    return seconds


def pip_install(venv: Path, python: Path, requirement: str) -> None:
    """A fresh venv and a plain `pip install` with pip's cache off (cold); quiet unless it fails."""
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement]
    proc = subprocess.run(
        pip, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise VllmPinError(f"`{' '.join(pip)}` failed: {proc.stderr.strip()[-500:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--vllm", default="0.10", help="env name or release (default 0.10)")
    parser.add_argument("--variant", choices=VARIANTS, default="cuda")
    parser.add_argument("--skip-pip", action="store_true", help="uv only (pip cold takes minutes)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the numbers here")
    add_index_options(parser)
    args = parser.parse_args(argv)
    try:
        meta, seconds = run(args.vllm, args.variant, index_from(args), skip_pip=args.skip_pip)
    except (VllmPinError, subprocess.CalledProcessError) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    print(f"\nprovision benchmark: {meta['release']} (Python {meta['python']}, {meta['date']})")
    for key, value in seconds.items():
        print(f"  {key.replace('_', ' '):<20} {value:8.1f}s")
    for slow, fast in [("pip_cold", "uv_cold"), ("pip_cold", "uv_warm"), ("uv_cold", "uv_warm")]:
        if slow in seconds and fast in seconds:
            ratio = seconds[slow] / max(seconds[fast], 1e-3)
            print(f"  {slow.replace('_', ' ')} / {fast.replace('_', ' '):<9} {ratio:8.1f}x")
    if args.json:
        text = json.dumps({**meta, "seconds": seconds}, indent=2) + "\n"
        args.json.write_text(text, encoding="utf-8")
    return 0


def run(
    request: str, variant: Variant, index: IndexConfig, *, skip_pip: bool
) -> tuple[dict[str, str], dict[str, float]]:
    """Lock (untimed), then time each way of building the environment."""
    spec = provision_envs.resolve_request(ROOT, request, variant)
    minor, python = provision_pythons.choose_python(spec, provision_pythons.find_pythons())
    lock = provision_lock.ensure_lock(spec, minor, index, force=False)
    meta = {
        "release": f"{spec.distribution} {spec.release}",
        "python": minor,
        "lock": str(lock),
        "date": time.strftime("%Y-%m-%d"),
    }
    seconds: dict[str, float] = {}
    (ROOT / provision_envs.BUILD_DIR).mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=ROOT / provision_envs.BUILD_DIR))
    try:
        if not skip_pip:
            requirement = f"{spec.distribution}=={spec.release}"
            seconds["pip_cold"] = timed(
                f"pip cold ({requirement})", lambda: pip_install(work / "pip", python, requirement)
            )
            shutil.rmtree(work / "pip")
        cold_cache = {"UV_CACHE_DIR": str(work / "uv-cache")}

        def build(name: str) -> dict[str, object]:
            return provision_build.build_env(work / name, lock, python, index, env=cold_cache)

        seconds["uv_cold"] = timed("uv cold (empty cache)", lambda: build("uv-cold"))
        shutil.rmtree(work / "uv-cold")
        seconds["uv_warm"] = timed("uv warm (new venv, warm cache)", lambda: build("uv-warm"))
        seconds["rerun"] = timed("re-run (stamp matches)", lambda: build("uv-warm"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return meta, seconds


if __name__ == "__main__":
    sys.exit(main())
