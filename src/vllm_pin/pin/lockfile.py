"""requirements.lock files: what one is made from, its header, and the Python it targets.

A lock records the digest of its inputs (LockPlan), so `--check` tells a stale lock from a
current one without running uv.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vllm_pin.errors import VllmPinError
from vllm_pin.index.settings import IndexConfig
from vllm_pin.pin.cutoff import Cutoff
from vllm_pin.pin.lock import LockError, Target, compile_lock

if TYPE_CHECKING:
    from vllm_pin.pin.pins import PinSet

LOCK_NAME = "requirements.lock"
_NEVER = 'sys_platform == "never"'  # a uv override with this marker drops a package


@dataclass(frozen=True)
class LockPlan:
    """What a lock is made from; its digest tells --check whether a lock is stale."""

    requirements: str  # the requirements-vllm.txt text
    target: Target
    written: IndexConfig
    without: tuple[str, ...]
    cutoff: Cutoff

    @property
    def digest(self) -> str:
        data = json.dumps(
            [
                self.requirements,
                self.target.python_version,
                self.target.python_platform,
                self.written.lines(),
                sorted(self.without),
                self.cutoff.value,
                list(self.cutoff.packages),
            ]
        )
        return hashlib.sha256(data.encode()).hexdigest()

    def overrides(self) -> list[str]:
        return [f"{name}; {_NEVER}" for name in sorted(self.without)]


def render_lock(
    plan: LockPlan,
    pinset: PinSet,
    queried: IndexConfig,
    command: str,
    timeout: float,
) -> str:
    """Run uv and return the lock file text (header + index lines + uv's hashed body)."""
    body = compile_lock(
        "\n".join(pinset.requirement_lines()) + "\n",
        plan.target,
        queried,
        overrides=plan.overrides(),
        exclude_newer=plan.cutoff.value,
        exclude_newer_packages=plan.cutoff.packages,
        timeout=timeout,
    )
    release = pinset.release
    header = [
        f"# Full hashed lock of {release.distribution} {release.version} "
        f"(variant {pinset.variant.name}) for CPython {plan.target.python_version} "
        f"on {plan.target.python_platform}.",
        f"# Regenerate with: {command}",
        "# Install with: uv pip sync THIS_FILE  or  pip install --require-hashes -r THIS_FILE",
        f"# exclude-newer: {plan.cutoff.describe()}",
    ]
    if plan.without:
        header.append(
            f"# Left out on purpose (--without): {', '.join(sorted(plan.without))}; "
            f"{pinset.release.distribution} declares them."
        )
    # the sources uv really used, minus local paths: installs exactly what was hashed here
    used = queried.written()
    dropped = [u for u in plan.written.extra_index_urls if u not in used.extra_index_urls]
    if dropped:
        header.append(
            f"# Resolved from --find-links instead of {', '.join(dropped)}; to install where "
            "that index is reachable, add --extra-index-url for it."
        )
    header.append(f"# input-sha256: {plan.digest}")
    return "\n".join([*header, *used.lines(), body.rstrip("\n")]) + "\n"


def lock_for_pythons(
    pythons: Sequence[str],
    make_plan: Callable[[str], LockPlan],
    pinset: PinSet,
    queried: IndexConfig,
    command: str,
    timeout: float,
) -> tuple[LockPlan, str]:
    """Lock for the first Python in ``pythons`` that has wheels for every pinned package."""
    for i, python in enumerate(pythons):
        plan = make_plan(python)
        try:
            return plan, render_lock(plan, pinset, queried, command, timeout)
        except LockError as exc:
            if i == len(pythons) - 1 or "matching Python ABI tag" not in str(exc):
                raise
            print(
                f"{pinset.release.distribution} {pinset.release.version}: no wheels for "
                f"CPython {python}; trying an older one",
                file=sys.stderr,
            )
    raise VllmPinError("no Python to lock for")  # pythons is never empty


def lock_digest(text: str) -> str:
    """The input digest a lock file records, or '' when it has none."""
    for line in text.splitlines():
        if line.startswith("# input-sha256: "):
            return line.split(": ", 1)[1].strip()
        if not line.startswith("#"):
            break
    return ""


#: how much of a lock `lock_current` reads: its comment header, never the ~400 kB of hashes
_HEADER_CHARS = 16 * 1024


def lock_current(path: Path, digest: str) -> bool:
    """Whether the lock at ``path`` was made from the inputs with this digest."""
    try:
        with path.open(encoding="utf-8") as fh:
            return lock_digest(fh.read(_HEADER_CHARS)) == digest
    except OSError:
        return False
