"""`vllm-pin gpu-sweep`: every attention backend x cudagraph mode of one release, on a real GPU.

Run it inside the vLLM environment under test (the same interpreter as the smoke test). Each
configuration is one process, in its own process group, that calls the project's smoke code
(`vllm_pin.in_env.smoke.run_generate`) on a tiny random-weight Llama; several run at once on the one
GPU (small memory share each). What every configuration did (ok with its greedy token ids,
or the root error signature, or a timeout) becomes ``matrix/observed/<release>-<gpu>.toml``,
and the greedy token ids of every configuration that ran are checked against each other.

Which backends and modes exist comes from matrix/timeline.toml for the release, else from the
installed vLLM's source, read statically. A backend that fails with vLLM's default cudagraph
mode for a reason that has nothing to do with CUDA graphs (a ROCm or MLA backend on a CUDA GPU
and a plain Llama) is not run again with every mode: those configurations are recorded as
``skipped`` with the probe's error, which keeps a sweep of 25 backends inside minutes.

The pieces: gpu_plan (configurations), gpu_scheduler (running them), gpu_process and
gpu_worker (one configuration's process), gpu_log and gpu_outcome (what it did), gpu_work_dir
(what it left), gpu_consistency and gpu_observation (the result), gpu_machine (GPU, release).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from vllm_pin.errors import VllmPinError
from vllm_pin.fsutil import atomic_write_text
from vllm_pin.gpu.machine import gpu_info, gpu_slug, installed_vllm, torch_version
from vllm_pin.gpu.observation import build_observation, summary
from vllm_pin.gpu.plan import plan, release_knobs
from vllm_pin.gpu.process import MAX_TOKENS, PROMPTS
from vllm_pin.gpu.scheduler import Sweep
from vllm_pin.gpu.work_dir import WorkDir
from vllm_pin.matrix.observed import Meta, Outcome, config_name, dump, observed_dir
from vllm_pin.matrix.paths import default_timeline_path

KV_CACHE_BYTES = 64 << 20


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
        default=300.0,
        help="seconds one configuration may take (default 300)",
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


def run(args: argparse.Namespace) -> int:
    """Run the sweep (or rebuild its file); 1 when the default configuration did not run."""
    if args.jobs < 1 or args.timeout <= 0:
        raise VllmPinError("--jobs must be >= 1 and --timeout > 0")
    work = WorkDir(args.work_dir.resolve())
    if args.from_work_dir:
        meta, outcomes = work.read()
    else:
        swept = _sweep(args, work)
        if swept is None:
            return 0
        meta, outcomes = swept
    obs = build_observation(meta, outcomes)
    text = dump(obs)
    target = args.output or (
        observed_dir() / f"{meta.release}-{meta.gpu_slug}.toml" if args.write else None
    )
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, text)
        print(f"gpu-sweep: wrote {target}")
    print("\n".join(summary(obs)))
    default = obs.outcome(config_name("", "", False, False))
    return 0 if default is not None and default.status == "ok" else 1


def _sweep(args: argparse.Namespace, work: WorkDir) -> tuple[Meta, list[Outcome]] | None:
    """Run the sweep; None after --dry-run."""
    release, package_dir = installed_vllm()
    knobs = release_knobs(release, args.timeline or default_timeline_path(), package_dir)
    the_plan = plan(knobs, args.repeat)
    if args.only:
        the_plan = the_plan.only(args.only)
    if args.dry_run:
        print(f"gpu-sweep: vllm {release}, knobs from {knobs.source}")
        for c in the_plan.all():
            print(f"{c.label:<42} kwargs={json.dumps(knobs.llm_kwargs(c, {}))} env={knobs.env(c)}")
        return None
    name, driver, capability = gpu_info()
    base: dict[str, Any] = {"gpu_memory_utilization": args.gpu_memory_utilization}
    if knobs.kv_cache_bytes:  # skips the memory profiling that concurrent runs upset
        base["kv_cache_memory_bytes"] = KV_CACHE_BYTES
    meta = Meta(
        path=f"observed/{release}-{args.gpu_slug or gpu_slug(name)}.toml",
        distribution="vllm",
        release=release,
        gpu=name,
        gpu_slug=args.gpu_slug or gpu_slug(name),
        compute_capability=capability,
        driver=driver,
        date=dt.datetime.now(dt.timezone.utc).date().isoformat(),
        command=shlex.join(["vllm-pin", *sys.argv[1:]]),
        python=platform.python_version(),
        torch=torch_version(),
        configs_source=knobs.source,
        llm_kwargs=json.dumps(base, sort_keys=True),
        prompts=PROMPTS,
        max_tokens=MAX_TOKENS,
    )
    work.write_meta(meta)
    if not (work.model_dir / "model.safetensors").is_file():
        from vllm_pin.in_env.smoke import make_tiny_llama

        make_tiny_llama(work.model_dir)
    deadline = None if args.budget is None else time.monotonic() + args.budget
    sweep = Sweep(work, knobs, base, args.jobs, args.timeout, deadline)
    outcomes = sweep.run(the_plan)
    return meta, [outcomes[c.label] for c in the_plan.all() if c.label in outcomes]
