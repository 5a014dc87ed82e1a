"""`pin --pyproject`: the vLLM extra of a PinSet, checked against the project's other needs.

pyproject_edit edits the text; this adds the clash check through uv (offline as a
fallback) and notes on requires-python and the torch index. Nothing is written until every
other output of the command passed its checks.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from vllm_pin.errors import VllmPinError
from vllm_pin.fsutil import atomic_write_text
from vllm_pin.index.settings import IndexConfig
from vllm_pin.pin import pyproject_edit as pe
from vllm_pin.pin.lock import LockError, Target, check_together, find_uv
from vllm_pin.pin.pins import PYTHONS, TORCH_INDEX_PACKAGES, PinSet, marker_environment


@dataclass
class PyprojectEdit:
    """A checked edit of a pyproject.toml, written only after every other check passed."""

    path: Path
    text: str
    extra: str
    conflict_groups: tuple[tuple[str, ...], ...]
    clashes: list[pe.Clash]
    notes: list[str]

    def apply(self) -> int:
        """Write the file and report; exit 1 while an undeclared clash remains."""
        atomic_write_text(self.path, self.text)
        print(f"wrote {self.path} (extra {self.extra!r})")
        for group in self.conflict_groups:
            print(f"declared [tool.uv] conflicts: {', '.join(group)}")
        for note in self.notes:
            print(f"note: {note}", file=sys.stderr)
        for clash in self.clashes:
            print(clash.message(self.extra), file=sys.stderr)
        return 1 if self.clashes else 0


def prepare_pyproject(
    pinset: PinSet,
    target: Target,
    queried: IndexConfig,
    path: Path,
    extra: str,
    conflict_with: Sequence[str] = (),
    *,
    offline: bool = False,
    jobs: int = 4,
    timeout: float = 600.0,
) -> PyprojectEdit:
    """Edit the text in memory and find clashes with the project's other requirements.

    ``conflict_with`` are existing extras declared as uv conflicts of ``extra``; ``offline``,
    ``jobs`` and ``timeout`` say how the clash check runs uv (see :func:`find_clashes`).
    """
    try:
        original = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VllmPinError(f"{path} does not exist; create a pyproject.toml first") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VllmPinError(f"cannot read {path}: {exc}") from None
    result = pe.set_extra(original, path, extra, pinset.requirement_lines(), tuple(conflict_with))
    text = result.text
    if pinset.torch_build:
        routed = [
            p.requirement.name
            for p in pinset.pins
            if canonicalize_name(p.requirement.name) in TORCH_INDEX_PACKAGES
            and f"+{pinset.torch_build}" in str(p.requirement.specifier)
        ]
        index = f"pytorch-{pinset.torch_build}"
        text = pe.set_torch_index(text, path, extra, index, pinset.torch_index, routed)
    project = pe.read_project(pe.parse(text, path), path)
    ours = [*pinset.platform.requires_dist, *(p.requirement for p in pinset.pins)]
    groups = project.groups(extra)
    env = marker_environment(target.python_version, pinset.platform.machine)
    clashes, notes = find_clashes(
        ours, groups, env, target, queried, offline=offline, jobs=jobs, timeout=timeout
    )
    declared = sorted(set(project.extras) - set(groups) - {canonicalize_name(extra)})
    if declared:
        notes.append(f"not checked: declared uv conflicts of {extra!r}: {', '.join(declared)}")
    notes += _python_notes(pe.parse(original, path), pinset)
    if pinset.variant.torch_local:
        notes.append(
            f"torch +{pinset.variant.torch_local} lives on {pinset.variant.index_url}: declare it "
            "for uv ([[tool.uv.index]] with explicit = true, and [tool.uv.sources] torch)"
        )
    return PyprojectEdit(path, text, extra, result.conflict_groups, clashes, notes)


def find_clashes(
    ours: Sequence[Requirement],
    groups: dict[str, list[Requirement]],
    env: dict[str, str],
    target: Target,
    sources: IndexConfig,
    *,
    offline: bool = False,
    jobs: int = 4,
    timeout: float = 600.0,
) -> tuple[list[pe.Clash], list[str]]:
    """Clashes found by resolving each shared package with uv (`--no-deps`, in parallel).

    ``offline`` skips uv; ``jobs`` uv runs at a time, each at most ``timeout`` (capped at
    120) seconds. Falls back to the offline specifier check, and says so, when uv cannot
    answer.
    """
    if offline:
        return pe.offline_clashes(ours, groups, env), ["--offline: clashes checked offline"]
    shared = pe.shared_requirements(ours, groups, env)
    try:
        uv = find_uv()
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            reasons = list(
                pool.map(
                    lambda item: check_together(
                        pe.spec_lines(item[2]) + pe.spec_lines(item[3]),
                        target,
                        sources,
                        timeout=min(timeout, 120.0),
                        uv=uv,
                    ),
                    shared,
                )
            )
    except LockError as exc:
        note = f"uv could not check clashes ({exc}); fell back to the offline specifier check"
        return pe.offline_clashes(ours, groups, env), [note]
    method = "uv pip compile --no-deps"
    return [
        pe.Clash(
            package=name,
            group=group,
            ours=tuple(pe.spec_lines(mine)),
            theirs=tuple(pe.spec_lines(theirs)),
            method=method,
        )
        for (group, name, mine, theirs), reason in zip(shared, reasons)
        if reason is not None
    ], []


def _python_notes(doc: Any, pinset: PinSet) -> list[str]:
    """Warn when the project admits Pythons the release does not (uv lock then fails)."""
    raw = doc.get("project", {}).get("requires-python")
    if raw is None:
        return []
    try:
        project = SpecifierSet(str(raw))
    except InvalidSpecifier:
        return [f"requires-python {raw!r} is not a valid specifier"]
    release = pinset.release
    outside = [
        py
        for py in (*reversed(PYTHONS), "3.14")
        if project.contains(py, True) and not release.requires_python.contains(py, True)
    ]
    if not outside:
        return []
    return [
        f"requires-python {raw} admits Python {', '.join(outside)} but {release.distribution} "
        f"{release.version} needs {release.requires_python}; `uv lock` fails until you narrow "
        "requires-python"
    ]
