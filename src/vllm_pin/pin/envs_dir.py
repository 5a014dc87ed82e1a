"""envs/: one directory per series default and variant, regenerated or checked by `pin --all`.

Each env holds requirements-vllm.txt, env.toml (what nox needs without re-resolving) and a
hashed lock; SKIPPED.toml says which envs or locks could not be made, and why.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from vllm_pin.errors import VllmPinError
from vllm_pin.fsutil import finish_pending, write_all
from vllm_pin.index.settings import redact_text
from vllm_pin.matrix import cache
from vllm_pin.matrix.toml_emit import toml_inline
from vllm_pin.pin.cutoff import NO_CUTOFF, Cutoff, lock_cutoff
from vllm_pin.pin.lock import Target
from vllm_pin.pin.lockfile import LOCK_NAME, LockPlan, lock_current, lock_for_pythons
from vllm_pin.pin.options import PinOptions
from vllm_pin.pin.pins import (
    DEFAULT_OUTPUT,
    PinSet,
    build_pins,
    default_platform,
    effective_sources,
    python_candidates,
    render_requirements,
    warn_without,
)
from vllm_pin.pin.stale import differs, report_stale

if TYPE_CHECKING:
    from vllm_pin.matrix.core import ReleaseMatrix

ENV_FILE = "env.toml"
SKIPPED_FILE = "SKIPPED.toml"


@dataclass(frozen=True)
class EnvResult:
    """The files of one environment, or why it (or its lock) could not be made."""

    name: str
    files: dict[str, str] = field(default_factory=dict)  # file name -> text
    release: str = ""
    skipped: str = ""  # reason
    skipped_what: str = ""  # "env" or "lock"
    lock_digest: str = ""  # what the lock must record to be current


def env_names(m: ReleaseMatrix) -> list[tuple[str, str, str]]:
    """(name, series, variant) for every series of every variant: `0.10`, `0.32-cpu`."""
    out = []
    for variant in m.curated.get("variants", {}):
        dist = m.variant(variant).distribution
        for series in m.series(dist):
            out.append((series if variant == "cuda" else f"{series}-{variant}", series, variant))
    return out


def run_all(m: ReleaseMatrix, options: PinOptions) -> int:
    """Regenerate (or with --check, compare) envs/<name>/ for every selected env."""
    selected = env_names(m)
    known = {name for name, _, _ in selected}
    unknown = [n for n in options.only if n not in known]
    if unknown:
        raise VllmPinError(
            f"--only {unknown[0]!r} is no env; known: {', '.join(sorted(known, key=_env_key))}"
        )
    if options.only:
        selected = [s for s in selected if s[0] in options.only]
    root = Path(options.envs_dir)
    if root.is_dir():
        for path in finish_pending(root):
            print(f"pin --all: finished the interrupted write of {path}", file=sys.stderr)
    with_lock = not (options.check or options.no_lock or options.offline)
    skipped_before = _read_toml_file(root / SKIPPED_FILE)
    total = len(selected)
    counter = iter(range(1, total + 1))

    def work(item: tuple[str, str, str]) -> EnvResult:
        started = time.monotonic()
        result = generate_env(m, item, options, root, with_lock, skipped_before)
        status = f"skipped {result.skipped_what}: {result.skipped}" if result.skipped else "ok"
        if not with_lock and not result.skipped:
            return result  # offline work takes milliseconds: report only what needs a look
        print(
            f"[{next(counter)}/{total}] {result.name} {result.release}: {status} "
            f"({time.monotonic() - started:.1f}s)",
            file=sys.stderr,
            flush=True,
        )
        return result

    with ThreadPoolExecutor(max_workers=max(1, options.jobs if with_lock else 1)) as pool:
        results = list(pool.map(work, selected))
    if options.check:
        return check_envs(root, results, options.only)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VllmPinError(f"cannot create {root}: {exc.strerror or exc}") from None
    files: dict[Path, str | None] = {}
    for result in results:
        directory = root / result.name
        files.update({directory / name: text for name, text in result.files.items()})
        if result.skipped_what == "lock" and (directory / LOCK_NAME).exists():
            files[directory / LOCK_NAME] = None
    files[root / SKIPPED_FILE] = _merge_skipped(
        root, results, {n for n, _, _ in selected}, with_lock
    )
    new_dirs = sorted(d for d in {p.parent for p in files} if not d.is_dir())
    try:
        for directory in new_dirs:
            try:
                directory.mkdir(parents=True)
            except OSError as exc:
                raise VllmPinError(f"cannot create {directory}: {exc.strerror or exc}") from None
        write_all(files, root, "vllm-pin pin --all")
    except BaseException:
        for directory in new_dirs:
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    print(f"wrote {root}/ ({sum(1 for r in results if r.files)} envs, see {SKIPPED_FILE})")
    return 0


def generate_env(
    m: ReleaseMatrix,
    item: tuple[str, str, str],
    options: PinOptions,
    root: Path,
    with_lock: bool,
    skipped_before: dict[str, Any],
) -> EnvResult:
    """Everything one env needs; failures become a SKIPPED reason, never an exception.

    A lock is only remade when its inputs changed: a current lock is kept, and a lock that
    failed for the same inputs is not retried (minutes of timeouts against an unreachable
    index) unless --relock or --find-links asks for it.
    """
    name, series, variant_name = item
    recorded = _read_toml_file(root / name / ENV_FILE)
    try:
        variant = m.variant(variant_name)
        resolution = m.resolve(series, variant=variant_name)
        pinset = build_pins(m, resolution, variant, options.machine)
        written, queried = effective_sources(pinset, options.index)
        pinset = replace(pinset, sources=written)
        pythons = _sticky_pythons(pinset, m, options.python_version, recorded.get("python-version"))
    except VllmPinError as exc:
        return EnvResult(name, skipped=str(exc), skipped_what="env")
    platform = (
        options.python_platform
        or str(recorded.get("python-platform", ""))
        or default_platform(pinset.platform)
    )
    without = tuple(sorted(options.without or recorded.get("without", [])))
    warn_without(m, resolution.release, without)
    try:
        cutoff = lock_cutoff(
            resolution.release,
            options.exclude_newer or _recorded_cutoff(recorded),
            options.exclude_newer_package or recorded.get("exclude-newer-package", []),
        )
    except VllmPinError as exc:
        return EnvResult(name, skipped=str(exc), skipped_what="env")
    command = f"vllm-pin pin --all --only {name}"
    requirements = render_requirements(pinset, command, written)
    release = f"{resolution.release.distribution} {resolution.release.version}"

    def make_plan(python: str) -> LockPlan:
        return LockPlan(requirements, Target(python, platform), written, without, cutoff)

    def result_for(plan: LockPlan, **kw: Any) -> EnvResult:
        files = {
            DEFAULT_OUTPUT: requirements,
            ENV_FILE: render_env_toml(name, pinset, plan.target, without, cutoff),
            **kw.pop("files", {}),
        }
        return EnvResult(name, files, release=release, lock_digest=plan.digest, **kw)

    plan = make_plan(pythons[0])
    lock_path = root / name / LOCK_NAME
    failed = skipped_before.get(name, {})
    if not with_lock or (
        not options.relock and lock_path.is_file() and lock_current(lock_path, plan.digest)
    ):
        return result_for(plan)
    if (
        not (options.relock or options.index.find_links)
        and failed.get("input-sha256") == plan.digest
    ):
        return result_for(plan, skipped=str(failed.get("reason", "")), skipped_what="lock")
    try:
        plan, lock = lock_for_pythons(pythons, make_plan, pinset, queried, command, options.timeout)
    except VllmPinError as exc:
        if lock_path.is_file() and lock_current(lock_path, plan.digest):
            # --relock where the index is unreachable (the cpu index without --find-links)
            # must not throw away a lock that is still current
            print(f"{name}: kept the current lock; re-locking failed: {exc}", file=sys.stderr)
            return result_for(plan)
        return result_for(plan, skipped=str(exc), skipped_what="lock")
    return result_for(plan, files={LOCK_NAME: lock})


def _sticky_pythons(pinset: PinSet, m: ReleaseMatrix, requested: str, recorded: Any) -> list[str]:
    """[--python-version], else the env's recorded choice (while allowed) before the rest."""
    if requested:
        return python_candidates(pinset, m, requested)
    allowed = python_candidates(pinset, m)
    if recorded in allowed:
        return [recorded, *(py for py in allowed if py != recorded)]
    return allowed


def _recorded_cutoff(recorded: dict[str, Any]) -> str:
    """The --exclude-newer an env was last given (sticky, like its python-version), or ''."""
    return Cutoff("", str(recorded.get("exclude-newer-rule", ""))).given


def render_env_toml(
    name: str, pinset: PinSet, target: Target, without: Sequence[str], cutoff: Cutoff
) -> str:
    """env.toml: what nox needs to list and build the env without re-resolving."""
    release = pinset.release
    fields: list[tuple[str, Any]] = [
        ("name", name),
        ("variant", pinset.variant.name),
        ("distribution", release.distribution),
        ("release", str(release.version)),
        ("series", release.series),
        ("rule", pinset.resolution.rule),
        ("machine", pinset.platform.machine),
        ("python-version", target.python_version),
        ("python-platform", target.python_platform),
        ("requires-python", str(release.requires_python)),
        ("without", list(without)),
        ("exclude-newer", cutoff.value or NO_CUTOFF),
        ("exclude-newer-rule", cutoff.rule),
        ("exclude-newer-package", list(cutoff.packages)),
        ("requirements", DEFAULT_OUTPUT),
        ("lock", LOCK_NAME),
    ]
    lines = [
        f"# Generated by `vllm-pin pin --all --only {name}`. DO NOT EDIT (python-version,",
        "# python-platform, without and a given --exclude-newer[-package] are kept on",
        "# regeneration; change them with the options).",
    ]
    lines += [f"{key} = {toml_inline(value)}" for key, value in fields]
    return "\n".join(lines) + "\n"


def _read_toml_file(path: Path) -> dict[str, Any]:
    """An env's env.toml or SKIPPED.toml ({} when absent), through the matrix parse cache."""
    try:
        return cache.read_toml(path)[0]
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise VllmPinError(f"{path} is not valid TOML ({exc}); delete it and re-run") from None


def _merge_skipped(
    root: Path, results: Sequence[EnvResult], regenerated: set[str], locked: bool
) -> str:
    """SKIPPED.toml: this run's skips, plus earlier entries of envs not regenerated now.

    A run without locks (--no-lock, --offline) keeps the earlier lock entries: it did not
    try to lock, so it knows nothing new about why a lock is missing.
    """
    entries = {
        name: entry
        for name, entry in _read_toml_file(root / SKIPPED_FILE).items()
        if isinstance(entry, dict)
        and (name not in regenerated or (not locked and entry.get("what") == "lock"))
    }
    for result in results:
        if result.skipped:
            entries[result.name] = {
                "what": result.skipped_what,
                "release": result.release,
                "reason": redact_text(result.skipped),
                **({"input-sha256": result.lock_digest} if result.lock_digest else {}),
            }
    lines = [
        '# Environments (what = "env") or locks (what = "lock") that `vllm-pin pin --all`',
        "# could not make, and why. Generated; DO NOT EDIT.",
    ]
    for name in sorted(entries, key=_env_key):
        lines.append("")
        lines.append(f"[{toml_inline(name)}]")
        lines += [f"{k} = {toml_inline(v)}" for k, v in sorted(entries[name].items())]
    return "\n".join(lines) + "\n"


def _env_key(name: str) -> tuple[Version, str]:
    series, _, variant = name.partition("-")
    return Version(series), variant


def check_envs(root: Path, results: Sequence[EnvResult], only: Sequence[str] = ()) -> int:
    """Compare regenerated files with envs/; a lock is current when its input digest matches.

    ``only`` (the envs --only selected) goes into the command the stale report suggests.
    """
    skipped = _read_toml_file(root / SKIPPED_FILE)
    stale: list[str] = []
    for result in results:
        directory = root / result.name
        if result.skipped_what == "env":
            if result.name not in skipped:
                stale.append(f"{root / SKIPPED_FILE} (no entry for {result.name})")
            continue
        stale += [str(directory / f) for f, t in result.files.items() if differs(directory / f, t)]
        lock = directory / LOCK_NAME
        if lock.is_file():
            if not lock_current(lock, result.lock_digest):
                stale.append(f"{lock} (made from other inputs)")
        elif result.name not in skipped:
            stale.append(f"{lock} (missing, and not in {SKIPPED_FILE})")
    selected = f" --only {' '.join(only)}" if only else ""
    return report_stale(stale, f"vllm-pin pin --all{selected}")
