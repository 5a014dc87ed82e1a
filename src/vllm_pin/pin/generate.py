"""`vllm-pin pin`: one release's outputs checked, then written; or every env of `--all`.

Pins come from the committed matrix only, so writing requirements-vllm.txt works offline
and fast; only `--lock` and the pyproject clash check run uv (and so need an index). This
module orders the work; it lives in pins, cutoff, lockfile, pyproject_extra and envs_dir.

The modules of locks, pyproject edits and `--all` are imported where they are
asked for, not at the top: a plain requirements file must cost about an interpreter start
(their imports were a third of it), see benchmarks/pin_speed.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from vllm_pin.errors import VllmPinError
from vllm_pin.fsutil import atomic_write_text, check_writable
from vllm_pin.index.settings import IndexConfig, redact
from vllm_pin.matrix.core import ReleaseMatrix, Resolution, load_release_matrix
from vllm_pin.names import cuda_of_build
from vllm_pin.pin.cutoff import check_options, lock_cutoff
from vllm_pin.pin.options import PinOptions
from vllm_pin.pin.pins import (
    DEFAULT_OUTPUT,
    PinSet,
    build_pins,
    default_platform,
    effective_sources,
    explain,
    python_candidates,
    render_requirements,
    warn_without,
    with_torch_build,
)
from vllm_pin.pin.stale import differs, report_stale

__all__ = ["Pinned", "generate", "generate_one", "pin_release", "regenerate_command"]


def generate(options: PinOptions) -> int:
    """The single-release path, or `--all`; the exit code."""
    check_options(options.exclude_newer, options.exclude_newer_package)  # fail before any work
    if options.all and options.torch_build:
        raise VllmPinError("--cuda/--torch-backend pin one release; drop --all")
    m = load_release_matrix(options.matrix_dir)
    if options.all:
        from vllm_pin.pin.envs_dir import run_all  # deferred: only --all (module docstring)

        return run_all(m, options)
    if bool(options.extra) != bool(options.pyproject):
        raise VllmPinError("--pyproject and --extra go together: --pyproject PATH --extra NAME")
    if (
        options.pyproject
        and options.output is not None
        and Path(options.output).resolve() == Path(options.pyproject).resolve()
    ):
        raise VllmPinError("-o and --pyproject name the same file; write the pins elsewhere")
    if options.only:
        raise VllmPinError("--only selects envs of --all; add --all")
    return generate_one(m, options)


@dataclass(frozen=True)
class Pinned:
    """One release pinned as `pin` writes it: the pins, the sources written and queried, the
    regenerate command and the requirements-vllm.txt text."""

    resolution: Resolution
    pinset: PinSet
    queried: IndexConfig
    command: str
    text: str


def pin_release(m: ReleaseMatrix, options: PinOptions, output: Path) -> Pinned:
    """Resolve ``options.vllm`` and render its requirements file (nothing is written)."""
    variant = m.variant(options.variant)
    resolution = m.resolve(options.vllm, variant=options.variant, allow_yanked=options.allow_yanked)
    pinset = build_pins(m, resolution, variant, options.machine)
    if options.torch_build:
        pinset = with_torch_build(m, pinset, options.torch_build)
    written, queried = effective_sources(pinset, options.index)
    pinset = replace(pinset, sources=written)
    command = regenerate_command(options, output)
    return Pinned(
        resolution, pinset, queried, command, render_requirements(pinset, command, written)
    )


def generate_one(m: ReleaseMatrix, options: PinOptions) -> int:
    """Check every output of one release, then write them: requirements, lock, extra."""
    # with --pyproject the extra is the output; a requirements file only when -o asks for it
    write_requirements = options.output is not None or not options.pyproject
    output = Path(options.output or DEFAULT_OUTPUT)
    pinned = pin_release(m, options, output)
    resolution, pinset, command, text = (
        pinned.resolution,
        pinned.pinset,
        pinned.command,
        pinned.text,
    )
    written, queried = pinset.sources, pinned.queried
    pythons = python_candidates(pinset, m, options.python_version)
    platform = options.python_platform or default_platform(pinset.platform)
    release = resolution.release
    print(f"{release.distribution} {release.version}: picked by {resolution.rule}")
    warn_without(m, release, options.without)
    if options.explain:
        print("\n".join(explain(pinset, m)))
    lock_path = Path(options.lock_output) if options.lock_output else output.with_suffix(".lock")
    stale: list[Path | str] = [output] if options.check and differs(output, text) else []
    lock_text, python = "", pythons[0]
    if options.lock or options.pyproject:
        from vllm_pin.pin.lock import Target  # deferred: uv and locks, only when asked for
        from vllm_pin.pin.lockfile import LockPlan, lock_current, lock_for_pythons

        cutoff = lock_cutoff(release, options.exclude_newer, options.exclude_newer_package)

        def plan_for(python: str) -> LockPlan:
            return LockPlan(text, Target(python, platform), written, options.without, cutoff)

        if options.check:
            digests = {plan_for(py).digest for py in pythons}
            if options.lock and not any(lock_current(lock_path, d) for d in digests):
                stale.append(f"{lock_path} (missing or made from other inputs)")
        elif options.lock:
            if options.offline:
                raise VllmPinError("--lock needs uv and a package index; drop --offline")
            plan, lock_text = lock_for_pythons(
                pythons, plan_for, pinset, queried, command, options.timeout
            )
            python = plan.target.python_version
    if options.check:
        return report_stale(stale, command)
    edit = None
    if options.pyproject:
        from vllm_pin.pin.pyproject_extra import prepare_pyproject  # deferred: tomlkit, uv

        edit = prepare_pyproject(
            pinset,
            Target(python, platform),
            queried,
            options.pyproject,
            options.extra,
            options.conflict_with,
            offline=options.offline,
            jobs=options.jobs,
            timeout=options.timeout,
        )
    targets = [output] if write_requirements else []
    check_writable(
        [*targets, *([lock_path] if options.lock else []), *([edit.path] if edit else [])]
    )
    if write_requirements:
        atomic_write_text(output, text)
        print(f"wrote {output} ({len(pinset.pins)} pins)")
    if options.lock:
        atomic_write_text(lock_path, lock_text)
        print(f"wrote {lock_path} (CPython {python}, {platform})")
    if edit is not None:
        return edit.apply()
    return 0


def regenerate_command(options: PinOptions, output: Path) -> str:
    """The command line that regenerates the files (source and lock options included)."""
    parts = ["vllm-pin pin", "--vllm", options.vllm]
    if options.variant != "cuda":
        parts += ["--variant", options.variant]
    if options.machine != "x86_64":
        parts += ["--machine", options.machine]
    if options.torch_build:
        parts += ["--cuda", cuda_of_build(options.torch_build)]
    if options.allow_yanked:
        parts.append("--allow-yanked")
    if options.index.no_index:
        parts.append("--no-index")
    if options.index.index_url:
        parts += ["--index-url", redact(options.index.index_url)]
    for option, values in (
        ("--extra-index-url", options.index.extra_index_urls),
        ("--find-links", options.index.find_links),
    ):
        for value in values or ():
            parts += [option, redact(value)]
    parts += ["-o", str(output)]
    if options.lock:
        parts.append("--lock")
        for option, value in (
            ("--lock-output", options.lock_output),
            ("--python-version", options.python_version),
            ("--python-platform", options.python_platform),
            ("--exclude-newer", options.exclude_newer),
        ):
            if value:
                parts += [option, value]
        for name in options.without:
            parts += ["--without", name]
        for exception in options.exclude_newer_package:
            parts += ["--exclude-newer-package", exception]
    return " ".join(parts)
