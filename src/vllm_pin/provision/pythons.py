"""Which CPython builds an environment: the ones on this machine (PATH, pyenv) the env allows."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from packaging.version import Version

from vllm_pin.errors import VllmPinError
from vllm_pin.provision.envs import EnvSpec

_PYTHON_NAME = re.compile(r"^python(3\.\d+)$")


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
