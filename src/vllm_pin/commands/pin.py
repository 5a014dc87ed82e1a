"""`vllm-pin pin`: requirements-vllm.txt, pyproject extras, hashed locks, and `envs/`.

Pins come from the committed matrix only, so writing requirements-vllm.txt works offline
and fast; only `--lock` and the pyproject clash check run uv (and so need an index). This
module is the command: its options, and the order in which one release's outputs are
checked and then written. The work lives in pins, cutoff, lockfile, pyproject_extra and
envs_dir (`--all`).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from vllm_pin.errors import VllmPinError
from vllm_pin.fsutil import atomic_write_text, check_writable
from vllm_pin.index import settings as indexes
from vllm_pin.pin.cutoff import EXCLUDE_NEWER_DAYS, check_options, lock_cutoff
from vllm_pin.pin.envs_dir import run_all
from vllm_pin.pin.lock import Target
from vllm_pin.pin.lockfile import LockPlan, lock_current, lock_for_pythons
from vllm_pin.pin.pins import (
    DEFAULT_OUTPUT,
    build_pins,
    default_platform,
    effective_sources,
    explain,
    python_candidates,
    render_requirements,
)
from vllm_pin.pin.pyproject_extra import prepare_pyproject
from vllm_pin.pin.stale import differs, report_stale

if TYPE_CHECKING:
    from vllm_pin.matrix.model import Matrix

MACHINES = ("x86_64", "aarch64")


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin pin` (also `tools/pin.py`)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "examples:\n"
        "  vllm-pin pin --vllm 0.10.1.1                  # ./requirements-vllm.txt\n"
        "  vllm-pin pin --vllm 0.10 --explain            # series default, with provenance\n"
        "  vllm-pin pin --vllm latest --variant cpu -o req-cpu.txt\n"
        "  vllm-pin pin --vllm 0.10.1.1 --pyproject pyproject.toml --extra vllm\n"
        "  vllm-pin pin --vllm 0.10.1.1 --lock           # + requirements-vllm.lock (uv)\n"
        "  vllm-pin pin --all [--only 0.10 0.32-cpu] [--check]   # envs/<name>/...\n"
        "sources: --index-url/--extra-index-url/--find-links, else $VLLM_PIN_INDEX_URL,\n"
        "  $VLLM_PIN_EXTRA_INDEX_URL, $VLLM_PIN_FIND_LINKS (space separated), else the\n"
        "  variant's index (cpu: https://download.pytorch.org/whl/cpu).\n"
        "  `--extra-index-url none` drops that; `--index-url none` means no index at all.\n"
        "  --find-links dirs are used to lock but never written into the files; while one\n"
        "  is given, the variant's own index is written but not queried.\n"
        f"locks see uploads up to the release's upload time + {EXCLUDE_NEWER_DAYS} days (uv\n"
        "  --exclude-newer; find-links wheels are never excluded); --exclude-newer overrides.\n"
        "--all keeps each env's python-version, python-platform, without, a given\n"
        "  --exclude-newer and --exclude-newer-package (env.toml); `--exclude-newer default`\n"
        "  returns to the rule, `--exclude-newer-package none` drops the exceptions.\n"
        "exit: 0 ok, 1 stale (--check) or an undeclared pyproject clash, 2 bad input."
    )
    what = parser.add_argument_group("what to pin")
    what.add_argument(
        "--vllm",
        default="latest",
        metavar="VERSION",
        help="exact release (0.10.1.1), series (0.10: its default) or 'latest' (default)",
    )
    what.add_argument("--variant", default="cuda", help="cuda (PyPI wheels, default) or cpu")
    what.add_argument("--machine", choices=MACHINES, default="x86_64", help="default x86_64")
    what.add_argument("--allow-yanked", action="store_true", help="accept a yanked release")
    what.add_argument(
        "--matrix-dir", type=Path, help="matrix directory (default: the checkout's matrix/)"
    )
    out = parser.add_argument_group("outputs")
    out.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help=f"requirements file to write (default: ./{DEFAULT_OUTPUT}; "
        "with --pyproject, none unless given)",
    )
    out.add_argument("--explain", action="store_true", help="print where each pin came from")
    out.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the output (or envs/ with --all) is stale",
    )
    py = parser.add_argument_group("pyproject.toml extra")
    py.add_argument("--pyproject", type=Path, metavar="PATH", help="add/update an extra here")
    py.add_argument("--extra", metavar="NAME", help="name of the extra (with --pyproject)")
    py.add_argument(
        "--conflict-with",
        action="append",
        default=[],
        metavar="EXTRA",
        help="also declare this existing extra as a uv conflict of the new one (repeatable)",
    )
    lk = parser.add_argument_group("hashed lock (uv pip compile --generate-hashes)")
    lk.add_argument("--lock", action="store_true", help="also write a full hashed lock")
    lk.add_argument(
        "--lock-output", metavar="PATH", help="lock path (default: the output with .lock suffix)"
    )
    lk.add_argument(
        "--python-version",
        default="",
        metavar="X.Y",
        help="target CPython (default: newest of 3.9-3.13 the release allows)",
    )
    lk.add_argument(
        "--python-platform",
        default="",
        metavar="UV_PLATFORM",
        help="uv target platform (default: <machine>-manylinux_2_28, or the wheel's level)",
    )
    lk.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="PKG",
        help="leave a declared dependency out of the lock (e.g. CUDA torchvision for cpu)",
    )
    lk.add_argument(
        "--exclude-newer",
        default="",
        metavar="DATE|none",
        help=f"newest upload a lock may use (default: release upload + {EXCLUDE_NEWER_DAYS}d)",
    )
    lk.add_argument(
        "--exclude-newer-package",
        action="append",
        default=[],
        metavar="NAME=DATE",
        help="another cutoff for one package (repeatable; 'none' clears them)",
    )
    lk.add_argument("--timeout", type=float, default=600.0, help="seconds per uv run")
    lk.add_argument(
        "--offline", action="store_true", help="never run uv: no --lock, offline clash check"
    )
    indexes.add_arguments(parser)
    env = parser.add_argument_group("envs/ (every series default and variant)")
    env.add_argument("--all", action="store_true", help="regenerate envs/<name>/ for every env")
    env.add_argument("--only", nargs="+", default=[], metavar="NAME", help="e.g. 0.10 0.32-cpu")
    env.add_argument("--envs-dir", type=Path, default=Path("envs"), help="default: ./envs")
    env.add_argument("--no-lock", action="store_true", help="--all without locks (offline)")
    env.add_argument(
        "--relock", action="store_true", help="re-lock even where the lock's inputs are unchanged"
    )
    env.add_argument("-j", "--jobs", type=int, default=4, help="parallel locks (default 4)")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the single-release path or to `--all`."""
    from vllm_pin.matrix.model import load_matrix

    check_options(args.exclude_newer, args.exclude_newer_package)  # fail before any work
    m = load_matrix(args.matrix_dir)
    if args.all:
        return run_all(m, args)
    if bool(args.extra) != bool(args.pyproject):
        raise VllmPinError("--pyproject and --extra go together: --pyproject PATH --extra NAME")
    if args.only:
        raise VllmPinError("--only selects envs of --all; add --all")
    return _run_one(m, args)


def _run_one(m: Matrix, args: argparse.Namespace) -> int:
    variant = m.variant(args.variant)
    resolution = m.resolve(args.vllm, variant=args.variant, allow_yanked=args.allow_yanked)
    pinset = build_pins(m, resolution, variant, args.machine)
    written, queried = effective_sources(pinset, args)
    pinset = replace(pinset, sources=written)
    pythons = python_candidates(pinset, m, args.python_version)
    platform = args.python_platform or default_platform(pinset.platform)
    target = Target(pythons[0], platform)
    cutoff = lock_cutoff(resolution.release, args.exclude_newer, args.exclude_newer_package)
    # with --pyproject the extra is the output; a requirements file only when -o asks for it
    write_requirements = args.output is not None or not args.pyproject
    output = Path(args.output or DEFAULT_OUTPUT)
    command = _command(args, output)
    text = render_requirements(pinset, command, written)

    def plan_for(python: str) -> LockPlan:
        return LockPlan(text, Target(python, platform), written, tuple(args.without), cutoff)

    release = resolution.release
    print(f"{release.distribution} {release.version}: picked by {resolution.rule}")
    if args.explain:
        print("\n".join(explain(pinset, m)))
    lock_path = Path(args.lock_output) if args.lock_output else output.with_suffix(".lock")
    if args.check:
        stale: list[Path | str] = [output] if differs(output, text) else []
        digests = {plan_for(py).digest for py in pythons}
        if args.lock and not any(lock_current(lock_path, d) for d in digests):
            stale.append(f"{lock_path} (missing or made from other inputs)")
        return report_stale(stale, command)

    lock_text = ""
    if args.lock:
        if args.offline:
            raise VllmPinError("--lock needs uv and a package index; drop --offline")
        plan, lock_text = lock_for_pythons(
            pythons, plan_for, pinset, queried, command, args.timeout
        )
        target = plan.target
    edit = None
    if args.pyproject:
        edit = prepare_pyproject(pinset, target, queried, args)
    targets = [output] if write_requirements else []
    check_writable([*targets, *([lock_path] if args.lock else []), *([edit.path] if edit else [])])
    if write_requirements:
        atomic_write_text(output, text)
        print(f"wrote {output} ({len(pinset.pins)} pins)")
    if args.lock:
        atomic_write_text(lock_path, lock_text)
        print(f"wrote {lock_path} (CPython {target.python_version}, {target.python_platform})")
    if edit is not None:
        return edit.apply()
    return 0


def _command(args: argparse.Namespace, output: Path) -> str:
    """The command line that regenerates the files (source and lock options included)."""
    parts = ["vllm-pin pin", "--vllm", args.vllm]
    if args.variant != "cuda":
        parts += ["--variant", args.variant]
    if args.machine != "x86_64":
        parts += ["--machine", args.machine]
    if args.allow_yanked:
        parts.append("--allow-yanked")
    if args.no_index:
        parts.append("--no-index")
    if args.index_url:
        parts += ["--index-url", args.index_url]
    for option, values in (
        ("--extra-index-url", args.extra_index_url),
        ("--find-links", args.find_links),
    ):
        for value in values or ():
            parts += [option, value]
    parts += ["-o", str(output)]
    if args.lock:
        parts.append("--lock")
        for option, value in (
            ("--lock-output", args.lock_output),
            ("--python-version", args.python_version),
            ("--python-platform", args.python_platform),
            ("--exclude-newer", args.exclude_newer),
        ):
            if value:
                parts += [option, value]
        for name in args.without:
            parts += ["--without", name]
        for exception in args.exclude_newer_package:
            parts += ["--exclude-newer-package", exception]
    return " ".join(parts)
