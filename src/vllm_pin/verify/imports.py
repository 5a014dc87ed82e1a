"""verify's VP701 (`--imports`): the imports vLLM does at start-up, each in a fresh interpreter
of the checked environment.

Metadata can look right while a build does not load; a failed import is explained by the
static findings that already point at its cause.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from vllm_pin.in_env import imports_check
from vllm_pin.verify.checks import Context, applies, bare_requirement, install_line
from vllm_pin.verify.env import CHECKED_FAMILY, Env, Problem, script_command

IMPORT_TIMEOUT_S = 300.0


def _import_checks_for(env: Env) -> list[str]:
    wanted = {
        "torch": "torch",
        "torch._inductor.config": "torch",
        "torchvision.ops": "torchvision",
        "torchaudio": "torchaudio",
        "vllm": "vllm",
    }
    have = {n for n in env.dists}
    if env.vllm is not None:
        have.add("vllm")
    return [check for check, dist in wanted.items() if dist in have]


def run_import_check(python: str, name: str, timeout: float) -> dict[str, Any]:
    """Run one check of imports_check.py in a fresh interpreter of the checked environment."""
    cmd = script_command(python, Path(imports_check.__file__), name)
    code = imports_check.CHECKS[name][0]
    with tempfile.TemporaryDirectory(prefix="vllm-pin-imports-") as cwd:
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
            )
        except subprocess.TimeoutExpired:
            return {
                "check": name,
                "code": code,
                "ok": False,
                "error": f"timed out after {timeout:g} s",
            }
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(imports_check.RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(imports_check.RESULT_PREFIX) :])
            return result
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {
        "check": name,
        "code": code,
        "ok": False,
        "error": f"the interpreter died (exit {done.returncode}): {tail}",
    }


def check_imports(
    env: Env, ctx: Context, timeout: float, earlier: Sequence[Problem] = ()
) -> Iterator[Problem]:
    """VP701: each import vLLM depends on, in its own subprocess, concurrently.

    ``earlier`` are the static findings: an import failure they explain points at them.
    """
    checks = _import_checks_for(env)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda c: run_import_check(env.executable, c, timeout), checks))
    for result in results:
        if result["ok"]:
            continue
        why, fix = _import_explanation(result["check"], result["error"], env, ctx, earlier)
        yield Problem("VP701", f"`{result['code']}`", f"fails: {result['error']}", why, fix)


def _import_explanation(
    check: str, error: str, env: Env, ctx: Context, earlier: Sequence[Problem]
) -> tuple[str, str]:
    """(why, fix) of a failed import, from what the static checks already found."""
    torch = env.get("torch")
    builds = [p for p in earlier if p.code.startswith("VP30")]
    if (check == "torch._inductor.config" or "torch._inductor" in error) and torch is not None:
        why = (
            "vLLM does `import torch` then `torch._inductor.config.compile_threads = 1`; "
            f"torch {torch.version} does not expose that attribute after a plain import"
        )
    elif builds:
        names = ", ".join(f"{p.code} {p.subject}" for p in builds)
        return f"CPU and CUDA builds are mixed ({names})", f"apply the fixes of {names} above"
    else:
        why = "vLLM cannot start until this import works"
    vllm = env.vllm
    pins = [
        bare_requirement(r)
        for r in (vllm.requires_dist if vllm is not None else ())
        if canonicalize_name(r.name) in CHECKED_FAMILY and applies(r, env, ()) == ""
    ]
    if pins:
        return why, install_line(ctx, *pins)
    return why, "fix the problems reported above, then run verify --imports again"
