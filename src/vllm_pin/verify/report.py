"""`vllm-pin verify`: find what makes a vLLM environment break, which `pip check` does not see.

This module runs the checks for a :class:`VerifyOptions` and renders the report;
`vllm_pin.commands.verify` parses the command line and prints.

Two modes share one set of checks:
- an installed environment (this interpreter, or ``--python PATH``), described by
  `inspect_env` run with that interpreter, so vllm-pin need not be installed there;
- a requirements/lock file plus ``--vllm X``, checked against the matrix before installing.

Every problem is one line: a stable code, what is wrong, why it breaks, and the fix.
Exit codes: 0 nothing found (and nothing printed), 1 problems, 2 usage or internal error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from packaging.utils import canonicalize_name
from packaging.version import Version

from vllm_pin.errors import MatrixError, VllmPinError
from vllm_pin.matrix.model import Matrix, load_matrix
from vllm_pin.names import Variant
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

__all__ = [
    "FORMATS",
    "IMPORT_TIMEOUT_S",
    "Format",
    "Verification",
    "VerifyOptions",
    "render",
    "run_checks",
    "verify",
]

#: how the report is printed: one line per problem, GitHub ::error annotations, or JSON
Format = Literal["text", "github", "json"]
FORMATS: tuple[Format, ...] = get_args(Format)


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
    """A workflow command's message: %, CR and LF encoded, as GitHub's runner decodes them."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    """A workflow command's property value (title=...): also ':' and ',' encoded."""
    return _github_escape(text).replace(":", "%3A").replace(",", "%2C")


def render(problems: Sequence[Problem], env: Env, fmt: Format) -> str:
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
            f"::error title={_github_property(f'{p.code} {p.subject}')}::"
            f"{_github_escape(p.line())}\n"
            for p in problems
        )
    return "".join(p.line() + "\n" for p in problems)


def _optional_matrix(path: Path | None) -> Matrix | None:
    """An installed env is checked against its own metadata even where no matrix ships;
    a matrix named with --matrix must load."""
    try:
        return load_matrix(path)
    except MatrixError:
        if path is not None:
            raise
        return None


@dataclass(frozen=True)
class VerifyOptions:
    """What to verify and how: an installed environment (``python``) or a plan
    (``requirements`` + ``vllm``)."""

    python: str | None = None
    """Interpreter of the environment to inspect; None: the running one."""
    requirements: Path | None = None
    """A requirements/lock file to check against the matrix instead (nothing installed)."""
    vllm: str | None = None
    variant: Variant | None = None
    python_version: str | None = None
    machine: str | None = None
    imports: bool = False
    import_timeout: float = IMPORT_TIMEOUT_S
    without: tuple[str, ...] = ()
    """Requirements of vllm left out on purpose."""
    matrix_dir: Path | None = None
    format: Format = "text"
    verbose: bool = False


@dataclass(frozen=True)
class Verification:
    """What verify found, and in which environment."""

    problems: list[Problem]
    env: Env


def verify(opts: VerifyOptions) -> Verification:
    """Build the environment (inspected or planned) and run every check on it."""
    if opts.requirements is None and (opts.vllm or opts.python_version or opts.machine):
        raise VllmPinError(
            "--vllm/--python-version/--machine describe a planned set: use them with "
            "--requirements FILE"
        )
    if opts.requirements is not None and opts.python is not None:
        raise VllmPinError("use either --python (an installed env) or --requirements (a plan)")
    if opts.requirements is not None and opts.imports:
        raise VllmPinError("--imports needs an installed environment, not --requirements")
    matrix: Matrix | None
    if opts.requirements is not None:
        matrix = load_matrix(opts.matrix_dir)
        env = env_from_requirements(
            opts.requirements,
            opts.vllm,
            matrix,
            variant=opts.variant,
            python_version=opts.python_version,
            machine=opts.machine,
        )
        install = "pip install"
    else:
        env = inspect_interpreter(opts.python)
        if opts.python is None:
            env.executable = sys.executable
        install = f"uv pip install --python {opts.python}" if opts.python else "pip install"
        matrix = _optional_matrix(opts.matrix_dir)
        if matrix is None:
            env.notes.append("matrix not found: checked against installed metadata only")
    without = frozenset(canonicalize_name(n) for n in opts.without)
    ctx = Context(matrix=matrix, install=install, without=without)
    problems = run_checks(
        env, ctx, driver=nvidia_driver(), imports=opts.imports, import_timeout=opts.import_timeout
    )
    return Verification(problems, env)
