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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from packaging.utils import canonicalize_name
from packaging.version import Version

from vllm_pin.errors import MatrixError, VllmPinError
from vllm_pin.matrix.model import Matrix, Release, load_matrix
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
from vllm_pin.verify.env import (
    Env,
    Problem,
    env_from_requirements,
    inspect_interpreter,
    marker_env,
)
from vllm_pin.verify.envvars import check_env_vars, knobs_for
from vllm_pin.verify.imports import IMPORT_TIMEOUT_S, check_imports
from vllm_pin.verify.ranges import Judgement, active_requirements, is_exact_set, judge
from vllm_pin.verify.requirement_sets import read_sets

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


def render(
    problems: Sequence[Problem],
    env: Env,
    fmt: Format,
    judgements: Sequence[Judgement] = (),
    *,
    explain: bool = False,
) -> str:
    """Text (one line per problem), github (::error annotations) or json.

    Range-based sets add what each admits and fits (json, or text with ``explain``); their
    warnings go to stderr in text (the command prints them) and become ::warning in github.
    """
    if fmt == "json":
        payload: dict[str, object] = {
            "ok": not problems,
            "checked": env.source,
            "python": str(env.python),
            "vllm": env.vllm.label if env.vllm else None,
            "problems": [p.as_dict() for p in problems],
            "notes": env.notes,
        }
        if judgements:
            payload["sets"] = [j.as_dict() for j in judgements]
            payload["warnings"] = [w for j in judgements for w in j.warnings]
        return json.dumps(payload, indent=2) + "\n"
    if fmt == "github":
        warnings = "".join(
            f"::warning title=vllm-pin::{_github_escape(w)}\n"
            for j in judgements
            for w in j.warnings
        )
        return warnings + "".join(
            f"::error title={_github_property(f'{p.code} {p.subject}')}::"
            f"{_github_escape(p.line())}\n"
            for p in problems
        )
    explained = "".join(j.explain() + "\n" for j in judgements) if explain else ""
    return explained + "".join(p.line() + "\n" for p in problems)


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
    """A requirements file, pyproject.toml, uv.lock or pylock.toml to check against the
    matrix instead (nothing installed)."""
    extras: tuple[str, ...] = ()
    """pyproject extras to select (none: the base and each extra that mentions vllm)."""
    groups: tuple[str, ...] = ()
    """PEP 735 dependency groups to select."""
    explain: bool = False
    """Say what each range-based set admits and which releases fit."""
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
    judgements: list[Judgement] = field(default_factory=list)
    """One per range-based set: what it admits and what fits."""


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
    if (opts.extras or opts.groups) and opts.requirements is None:
        raise VllmPinError("--extra/--group select from a pyproject.toml: use them with -r FILE")
    without = frozenset(canonicalize_name(n) for n in opts.without)
    if opts.requirements is not None:
        return _verify_sets(opts, opts.requirements, without)
    env = inspect_interpreter(opts.python)
    if opts.python is None:
        env.executable = sys.executable
    install = f"uv pip install --python {opts.python}" if opts.python else "pip install"
    matrix = _optional_matrix(opts.matrix_dir)
    if matrix is None:
        env.notes.append("matrix not found: checked against installed metadata only")
    ctx = Context(matrix=matrix, install=install, without=without)
    _warn_without(matrix, [env], without)
    problems = run_checks(
        env, ctx, driver=nvidia_driver(), imports=opts.imports, import_timeout=opts.import_timeout
    )
    return Verification(problems, env)


def _verify_sets(opts: VerifyOptions, path: Path, without: frozenset[str]) -> Verification:
    """Each set the file describes: exact pins by the checks, ranges over the matrix."""
    matrix = load_matrix(opts.matrix_dir)
    markers = marker_env(opts.python_version, opts.machine)
    ctx = Context(matrix=matrix, install="pip install", without=without)
    release = (
        matrix.resolve(opts.vllm, opts.variant or "cuda", allow_yanked=True).release
        if opts.vllm is not None
        else None
    )
    driver = nvidia_driver()
    problems: list[Problem] = []
    envs: list[Env] = []
    judgements: list[Judgement] = []
    for rs in read_sets(path, opts.extras, opts.groups):
        if is_exact_set(active_requirements(rs, markers), opts.vllm):
            env = env_from_requirements(
                rs,
                opts.vllm,
                matrix,
                variant=opts.variant,
                python_version=opts.python_version,
                machine=opts.machine,
            )
            problems += run_checks(env, ctx, driver=driver)
            envs.append(env)
            if opts.explain:  # what the pins admit; their problems are the checks' above
                judgements.append(judge(rs, matrix, markers=markers, vllm=release))
        else:
            found = judge(rs, matrix, markers=markers, vllm=release, variant=opts.variant)
            problems += found.problems
            judgements.append(found)
    _warn_without(matrix, envs, without, release)
    env = envs[0] if envs else _planned_env(str(path), markers)
    env.notes += [n for j in judgements for n in j.notes]
    return Verification(_dedupe(problems), env, judgements)


def _warn_without(
    matrix: Matrix | None,
    envs: Sequence[Env],
    without: frozenset[str],
    release: Release | None = None,
) -> None:
    """A stderr line per `--without` distribution every engine start of a checked vllm
    needs (curated `[[config-facts]]` `requires`); the problems found stay the same."""
    if matrix is None or not without:
        return
    checked = [(d.name, d.version) for e in envs if (d := e.vllm) is not None]
    if release is not None:
        checked.append((release.distribution, release.version))
    lines = [
        line
        for distribution, version in checked
        for line in matrix.knowledge.without_warnings(distribution, version, without)
    ]
    for line in dict.fromkeys(lines):
        print(line, file=sys.stderr)


def _planned_env(source: str, markers: dict[str, str]) -> Env:
    """The Env a range-based report names: the target Python and machine, nothing pinned."""
    return Env(
        executable="",
        python=Version(markers["python_full_version"]),
        markers=markers,
        machine=markers["platform_machine"],
        glibc=None,
        dists={},
        torch_cuda=None,
        vllm_site=None,
        environ={},
        installed=False,
        source=source,
    )
