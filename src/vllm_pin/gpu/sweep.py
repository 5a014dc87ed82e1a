"""Every attention backend x cudagraph mode of one release, on a real GPU (`vllm-pin gpu-sweep`).

Run it inside the vLLM environment under test (the same interpreter as the smoke test). Each
configuration is one process, in its own process group, that calls the project's smoke code
(`vllm_pin.in_env.smoke.run_generate`) on a tiny random-weight Llama; several run at once on the
one
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

import datetime as dt
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

from vllm_pin.gpu.machine import gpu_info, gpu_slug, installed_vllm, torch_version
from vllm_pin.gpu.plan import Knobs, Plan, plan, release_knobs
from vllm_pin.gpu.process import MAX_TOKENS, PROMPTS
from vllm_pin.gpu.scheduler import Sweep
from vllm_pin.gpu.work_dir import WorkDir
from vllm_pin.in_env.smoke import make_tiny_llama
from vllm_pin.matrix.observed import Meta, Outcome
from vllm_pin.matrix.paths import default_timeline_path

KV_CACHE_BYTES = 64 << 20


@dataclass(frozen=True)
class SweepOptions:
    """How to run a sweep (the options of `vllm-pin gpu-sweep` that reach the sweep)."""

    #: configurations run at once on the GPU
    jobs: int = 4
    #: seconds one configuration may take
    timeout: float = 400.0
    #: seconds for the whole sweep (None: no limit); later configurations are skipped
    budget: float | None = None
    #: GPU memory share of each configuration
    gpu_memory_utilization: float = 0.05
    #: configurations to run once more each time they are named (e.g. FLASH_ATTN+FULL)
    repeat: tuple[str, ...] = ()
    #: run only these configurations (none: all)
    only: tuple[str, ...] = ()
    #: name of the GPU in the file name (None: derived from the GPU's name)
    gpu_slug: str | None = None
    #: timeline.toml to read the release's knobs from (None: the matrix's)
    timeline: Path | None = None
    #: the command line recorded in the observation
    command: str = "vllm-pin gpu-sweep"


@dataclass(frozen=True)
class SweepPlan:
    """The installed release, its knobs and the configurations a sweep runs."""

    release: Version
    knobs: Knobs
    plan: Plan


def plan_sweep(options: SweepOptions) -> SweepPlan:
    """The configurations to run for the installed vLLM (nothing is started)."""
    release, package_dir = installed_vllm()
    knobs = release_knobs(release, options.timeline or default_timeline_path(), package_dir)
    the_plan = plan(knobs, options.repeat)
    if options.only:
        the_plan = the_plan.only(options.only)
    return SweepPlan(release, knobs, the_plan)


def dry_run_lines(planned: SweepPlan) -> list[str]:
    """What `--dry-run` prints: the release, then each configuration's kwargs and env."""
    knobs = planned.knobs
    lines = [f"gpu-sweep: vllm {planned.release}, knobs from {knobs.source}"]
    for c in planned.plan.all():
        lines.append(
            f"{c.label:<42} kwargs={json.dumps(knobs.llm_kwargs(c, {}))} env={knobs.env(c)}"
        )
    return lines


def run_sweep(
    options: SweepOptions, work: WorkDir, planned: SweepPlan
) -> tuple[Meta, list[Outcome]]:
    """Run every planned configuration on this GPU, recording in ``work`` as it goes."""
    release, knobs, the_plan = planned.release, planned.knobs, planned.plan
    name, driver, capability = gpu_info()
    base: dict[str, Any] = {"gpu_memory_utilization": options.gpu_memory_utilization}
    if knobs.kv_cache_bytes:  # skips the memory profiling that concurrent runs upset
        base["kv_cache_memory_bytes"] = KV_CACHE_BYTES
    meta = Meta(
        path=f"observed/{release}-{options.gpu_slug or gpu_slug(name)}.toml",
        distribution="vllm",
        release=release,
        gpu=name,
        gpu_slug=options.gpu_slug or gpu_slug(name),
        compute_capability=capability,
        driver=driver,
        date=dt.datetime.now(dt.timezone.utc).date().isoformat(),
        command=options.command,
        python=platform.python_version(),
        torch=torch_version(),
        configs_source=knobs.source,
        llm_kwargs=json.dumps(base, sort_keys=True),
        prompts=PROMPTS,
        max_tokens=MAX_TOKENS,
    )
    work.write_meta(meta)
    if not (work.model_dir / "model.safetensors").is_file():
        make_tiny_llama(work.model_dir)
    deadline = None if options.budget is None else time.monotonic() + options.budget
    sweep = Sweep(work, knobs, base, options.jobs, options.timeout, deadline)
    outcomes = sweep.run(the_plan)
    return meta, [outcomes[c.label] for c in the_plan.all() if c.label in outcomes]
