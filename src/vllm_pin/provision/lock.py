"""The lock an environment builds from: committed, or made on demand by `vllm-pin pin --lock`.

Provisioning also reads it: its sha256 for the build stamp, the names it pins for the smoke
test, and its text without index lines where explicit index settings replace them.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from vllm_pin.errors import VllmPinError
from vllm_pin.index import settings as indexes
from vllm_pin.provision.envs import ENVS_DIR, EnvSpec

_SOURCE_OPTIONS = ("--index-url", "--extra-index-url", "--find-links", "-i ", "-f ")


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


def lock_sha256(lock: Path) -> str:
    """The lock file's digest: the build stamp records it, so an edited lock is rebuilt."""
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


def without_sources(lock_text: str) -> str:
    """The lock without its index/find-links lines: explicit index settings replace them.

    A lock names the indexes it was made against (the PyTorch CPU index for the cpu
    variant); where those are unreachable, a mirror or a wheel directory must stand in.
    Every line still carries its sha256, so the files installed are the same.
    """
    kept = [ln for ln in lock_text.splitlines() if not ln.lstrip().startswith(_SOURCE_OPTIONS)]
    return "\n".join(kept) + "\n"
