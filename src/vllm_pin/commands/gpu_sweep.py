"""`vllm-pin gpu-sweep`: every attention backend x cudagraph mode of one release, on a real GPU.

Run it inside the vLLM environment under test. The options, and what becomes of the result:
the observation file (``--write``/``--output``) and its summary. The sweep itself is
:mod:`vllm_pin.gpu.sweep`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from vllm_pin.errors import VllmPinError
from vllm_pin.fsutil import atomic_write_text
from vllm_pin.gpu.observation import build_observation, summary
from vllm_pin.gpu.sweep import SweepOptions, dry_run_lines, plan_sweep, run_sweep
from vllm_pin.gpu.work_dir import WorkDir
from vllm_pin.matrix.observed import config_name, dump, observed_dir


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin gpu-sweep`."""
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("gpu-sweep"),
        help="logs and per-configuration results; a rerun resumes from it",
    )
    parser.add_argument(
        "--jobs", type=int, default=4, help="configurations run at once on the GPU (default 4)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=400.0,
        help="seconds one configuration may take (default 400: a first engine start compiles "
        "and JIT-builds kernels for minutes on a busy GPU)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds for the whole sweep; later configurations are skipped",
    )
    parser.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=0.05,
        help="GPU memory share of each configuration (default 0.05)",
    )
    parser.add_argument(
        "--repeat",
        action="append",
        default=[],
        metavar="CONFIG",
        help="run this configuration once more, e.g. FLASH_ATTN+FULL (give it twice for two "
        "more runs)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="CONFIG",
        help="run only these configurations (and record only them)",
    )
    parser.add_argument("--gpu-slug", help="name of the GPU in the file name (default: derived)")
    parser.add_argument(
        "--timeline", type=Path, default=None, help="timeline.toml to read the release's knobs from"
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument(
        "--write", action="store_true", help="write matrix/observed/<release>-<gpu>.toml"
    )
    out.add_argument("--output", type=Path, help="write the observation file here instead")
    parser.add_argument(
        "--from-work-dir",
        action="store_true",
        help="do not run: rebuild the observation from --work-dir",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the configurations and exit")


def sweep_options_from(args: argparse.Namespace) -> SweepOptions:
    """The options that reach the sweep, typed; the command line is recorded as given."""
    return SweepOptions(
        jobs=args.jobs,
        timeout=args.timeout,
        budget=args.budget,
        gpu_memory_utilization=args.gpu_memory_utilization,
        repeat=tuple(args.repeat),
        only=tuple(args.only),
        gpu_slug=args.gpu_slug,
        timeline=args.timeline,
        command=shlex.join(["vllm-pin", *sys.argv[1:]]),
    )


def run(args: argparse.Namespace) -> int:
    """Run the sweep (or rebuild its file); 1 when the default configuration did not run."""
    options = sweep_options_from(args)
    work_dir: Path = args.work_dir
    output: Path | None = args.output
    return gpu_sweep(
        options,
        work_dir,
        from_work_dir=args.from_work_dir,
        dry_run=args.dry_run,
        write=args.write,
        output=output,
    )


def gpu_sweep(
    options: SweepOptions,
    work_dir: Path,
    *,
    from_work_dir: bool = False,
    dry_run: bool = False,
    write: bool = False,
    output: Path | None = None,
) -> int:
    """The command's work on typed options; the exit code."""
    if options.jobs < 1 or options.timeout <= 0:
        raise VllmPinError("--jobs must be >= 1 and --timeout > 0")
    work = WorkDir(work_dir.resolve())
    if from_work_dir:
        meta, outcomes = work.read()
    else:
        planned = plan_sweep(options)
        if dry_run:
            print("\n".join(dry_run_lines(planned)))
            return 0
        meta, outcomes = run_sweep(options, work, planned)
    obs = build_observation(meta, outcomes)
    text = dump(obs)
    target = output or (observed_dir() / f"{meta.release}-{meta.gpu_slug}.toml" if write else None)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, text)
        print(f"gpu-sweep: wrote {target}")
    print("\n".join(summary(obs)))
    default = obs.outcome(config_name("", "", False, False))
    return 0 if default is not None and default.status == "ok" else 1
