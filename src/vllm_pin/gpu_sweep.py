"""`vllm-pin gpu-sweep`: every attention backend x cudagraph mode of one release, on a real GPU.

Run it inside the vLLM environment under test (the same interpreter as the smoke test). Each
configuration is one process, in its own process group, that calls the project's smoke code
(`vllm_pin.smoke.run_generate`) on a tiny random-weight Llama; several run at once on the one
GPU (small memory share each). What every configuration did (ok with its greedy token ids,
or the root error signature, or a timeout) becomes ``matrix/observed/<release>-<gpu>.toml``,
and the greedy token ids of every configuration that ran are checked against each other.

Which backends and modes exist comes from matrix/timeline.toml for the release, else from the
installed vLLM's source, read statically. A backend that fails with vLLM's default cudagraph
mode for a reason that has nothing to do with CUDA graphs (a ROCm or MLA backend on a CUDA GPU
and a plain Llama) is not run again with every mode: those configurations are recorded as
``skipped`` with the probe's error, which keeps a sweep of 25 backends inside minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import importlib.metadata as md
import importlib.util
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from vllm_pin import vllm_source
from vllm_pin.errors import VllmPinError
from vllm_pin.fsutil import atomic_write_text
from vllm_pin.observed import (
    MODE_ORDER,
    Consistency,
    Meta,
    Observation,
    Outcome,
    config_name,
    dump,
    observed_dir,
)
from vllm_pin.timeline import TimelineEntry, entry_from_files, load_timeline

PROMPTS = ("hello world", "the quick brown fox jumps over the lazy dog")
MAX_TOKENS = 8
KV_CACHE_BYTES = 64 << 20
#: environment every configuration runs with (on top of the caller's, minus its VLLM_*)
BASE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "PYTHONUNBUFFERED": "1",
}
#: a probe error that mentions CUDA graphs says nothing about the other modes: run them anyway
_CUDAGRAPH_ERROR = re.compile(r"cuda ?graph", re.IGNORECASE)
#: exception lines that only wrap the root cause, which the engine process printed earlier
_WRAPPERS = re.compile(
    r"Engine core initialization failed|EngineCore encountered|EngineDeadError|"
    r"EngineGenerateError|Worker proc \S+ died|WorkerProc initialization failed"
)
#: what vLLM prefixes to lines from its engine process, and to its own log records
_PREFIX = re.compile(
    r"^(?:\x1b\[[0-9;]*m)*(?:\((?:EngineCore|Worker|VllmWorker|APIServer)[\w ]*pid=\d+\) ?)?"
    r"(?:(?:\x1b\[[0-9;]*m)*(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)(?:\x1b\[[0-9;]*m)*\s+"
    r"\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?\s+\[[^\]]*\]\s?)?"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MODE_SET = re.compile(r"setting cudagraph_mode=(\w+)")
_MAX_ERROR = 400
_NOT_RUN = "not run: "


# -- configurations ------------------------------------------------------------------------


def _stem(label: str) -> str:
    """A configuration label as a file name (logs, results)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", label)


@dataclass(frozen=True)
class Config:
    """One configuration: ``backend``/``mode`` "" leave the choice to vLLM."""

    backend: str = ""
    mode: str = ""
    batch_invariant: bool = False
    enforce_eager: bool = False
    run: int = 1

    @property
    def name(self) -> str:
        return config_name(self.backend, self.mode, self.batch_invariant, self.enforce_eager)

    @property
    def label(self) -> str:
        return self.name if self.run == 1 else f"{self.name}#{self.run}"

    @property
    def stem(self) -> str:
        return _stem(self.label)

    def order(self) -> tuple[str, int, bool, bool, int]:
        """Sort key: backends by name (vLLM's choice first), modes in vLLM's order."""
        mode = MODE_ORDER.index(self.mode) + 1 if self.mode in MODE_ORDER else len(MODE_ORDER)
        return (
            self.backend,
            0 if not self.mode else mode,
            self.batch_invariant,
            self.enforce_eager,
            self.run,
        )


@dataclass(frozen=True)
class Knobs:
    """How this release is told the backend, and which knobs it has (from its timeline)."""

    backends: tuple[str, ...]
    modes: tuple[str, ...]
    backend_env: bool  # VLLM_ATTENTION_BACKEND instead of LLM(attention_backend=...)
    batch_invariant: bool  # the release knows VLLM_BATCH_INVARIANT
    kv_cache_bytes: bool  # LLM(kv_cache_memory_bytes=...) exists: no memory profiling race
    source: str

    def llm_kwargs(self, config: Config, base: Mapping[str, Any]) -> dict[str, Any]:
        kwargs = dict(base)
        if config.backend and not self.backend_env:
            kwargs["attention_backend"] = config.backend
        if config.mode:
            kwargs["compilation_config"] = {"cudagraph_mode": config.mode}
        if config.enforce_eager:
            kwargs["enforce_eager"] = True
        return kwargs

    def env(self, config: Config) -> dict[str, str]:
        env = {}
        if config.backend and self.backend_env:
            env["VLLM_ATTENTION_BACKEND"] = config.backend
        if config.batch_invariant:
            env["VLLM_BATCH_INVARIANT"] = "1"
        return env


def knobs_from_entry(entry: TimelineEntry, source: str) -> Knobs:
    """The knobs a timeline entry says the release has; an error when it cannot be swept."""
    if not entry.attention_backends:
        raise VllmPinError(f"{source} lists no attention backends; pass --backends")
    by_arg = "attention_backend" in entry.engine_args
    by_env = "VLLM_ATTENTION_BACKEND" in entry.env_vars
    if not (by_arg or by_env):
        raise VllmPinError(
            f"{source}: the release has neither LLM(attention_backend=) nor "
            "VLLM_ATTENTION_BACKEND, so a backend cannot be chosen"
        )
    modes = sorted(
        entry.cudagraph_modes,
        key=lambda m: (MODE_ORDER.index(m) if m in MODE_ORDER else len(MODE_ORDER), m),
    )
    return Knobs(
        backends=tuple(sorted(entry.attention_backends)),
        modes=tuple(modes),
        backend_env=not by_arg,
        batch_invariant="VLLM_BATCH_INVARIANT" in entry.env_vars,
        kv_cache_bytes="kv_cache_memory_bytes" in entry.engine_args,
        source=source,
    )


@dataclass(frozen=True)
class Plan:
    """Probes run first; a backend's other configurations wait for its probe."""

    probes: tuple[Config, ...]
    dependents: Mapping[str, tuple[Config, ...]]

    def all(self) -> list[Config]:
        return [*self.probes, *(c for cs in self.dependents.values() for c in cs)]


def plan(knobs: Knobs, repeat: Iterable[str] = ()) -> Plan:
    """Every backend x mode, batch invariance per backend, eager, and the repeats asked for.

    A probe is a backend with vLLM's default mode (plus the default configuration, eager, and
    default + batch invariance). Each ``repeat`` entry runs that configuration once more (named
    twice: two more runs), each in a new process, to see whether its ids change between them.
    """
    probes = [Config(), Config(enforce_eager=True)]
    if knobs.batch_invariant:
        probes.append(Config(batch_invariant=True))
    dependents: dict[str, list[Config]] = {}
    for backend in knobs.backends:
        probes.append(Config(backend=backend))
        deps = [Config(backend=backend, mode=m) for m in knobs.modes]
        if knobs.batch_invariant:
            deps.append(Config(backend=backend, batch_invariant=True))
        dependents[backend] = deps
    known = {c.name: c for c in [*probes, *(c for d in dependents.values() for c in d)]}
    for name, times in Counter(repeat).items():
        if name not in known:
            raise VllmPinError(
                f"--repeat {name}: no such configuration; names look like "
                f"{', '.join(sorted(known)[:3])}"
            )
        c = known[name]
        dependents.setdefault(c.backend, []).extend(
            replace(c, run=run) for run in range(2, times + 2)
        )
    return Plan(tuple(probes), {b: tuple(cs) for b, cs in dependents.items()})


# -- reading what a configuration did ------------------------------------------------------


def exception_lines(log: str) -> list[str]:
    """The final line of every traceback in ``log``, in order, engine-process prefixes removed.

    A traceback's frames are indented; its exception line is the first unindented line after
    "Traceback (most recent call last):". Only that line counts, so warnings that merely
    contain "Error" are never taken for a failure.
    """
    found = []
    in_tb = False
    for raw in log.splitlines():
        line = _PREFIX.sub("", _ANSI.sub("", raw.rstrip()))
        if line.startswith("Traceback (most recent call last)"):
            in_tb = True
        elif in_tb and line and not line[0].isspace():
            found.append(line.strip())
            in_tb = False
    return found


def error_signature(log: str, fallback: str = "") -> str:
    """The root error of a failed run: the last exception that is not just a wrapper.

    vLLM's engine process prints the real cause (``ValueError: Selected backend ...``); the
    calling process then raises ``RuntimeError: Engine core initialization failed``.
    """
    lines = exception_lines(log)
    roots = [x for x in lines if not _WRAPPERS.search(x)]
    sig = (roots or lines or [fallback])[-1]
    sig = " ".join(sig.split())
    return sig if len(sig) <= _MAX_ERROR else sig[: _MAX_ERROR - 3] + "..."


def selected_mode(log: str, reported: str | None) -> tuple[str, str]:
    """The cudagraph mode in force and the warning that changed it, if vLLM changed it.

    The mode the smoke test reads is the caller's copy of the config; vLLM's engine process
    may lower it (``...; setting cudagraph_mode=PIECEWISE``) and only says so in its log.
    """
    note = ""
    mode = reported or ""
    for raw in log.splitlines():
        m = _MODE_SET.search(raw)
        if m:
            mode = m.group(1)
            note = " ".join(_PREFIX.sub("", _ANSI.sub("", raw)).split())[:_MAX_ERROR]
    return _enum_name(mode), note


def _enum_name(value: str | None) -> str:
    """``CUDAGraphMode.FULL`` / ``AttentionBackendEnum.FLASH_ATTN`` -> the member name."""
    return (value or "").rsplit(".", 1)[-1]


def outcome_from_run(
    config: Config,
    log: str,
    result: Mapping[str, Any] | None,
    *,
    returncode: int | None,
    wall_s: float,
    timeout_s: float,
) -> Outcome:
    """Turn one process's log and smoke result (None if it wrote none) into an outcome."""
    timings = (result or {}).get("timings", {})
    status, error = "error", ""
    ids: tuple[tuple[int, ...], ...] = ()
    if result is not None and result.get("status") == "passed":
        status = "ok"
        ids = tuple(tuple(int(t) for t in row) for row in result["token_ids"])
    elif returncode is None:
        status, error = "timeout", f"timeout after {timeout_s:.0f} s"
    else:
        error = (result or {}).get("error") or _exit_reason(returncode)
    outcome = Outcome(
        config=config.name,
        run=config.run,
        backend=config.backend,
        cudagraph_mode=config.mode,
        batch_invariant=config.batch_invariant,
        enforce_eager=config.enforce_eager,
        status=status,
        error=error,
        selected_backend="",
        selected_mode="",
        mode_note="",
        token_ids=ids,
        import_s=float(timings.get("import", 0.0)),
        engine_start_s=float(timings.get("engine_start", 0.0)),
        generate_s=float(timings.get("generate", 0.0)),
        wall_s=round(wall_s, 1),
    )
    return read_log(outcome, log, result)


def read_log(outcome: Outcome, log: str, result: Mapping[str, Any] | None) -> Outcome:
    """Fill in what the log says: root error signature, backend and cudagraph mode in force.

    Kept apart from the run so `--from-work-dir` can re-read recorded logs with this version's
    parsers. ``outcome.error`` is the fallback when the log holds no traceback.
    """
    if outcome.status not in ("ok", "error"):
        return outcome
    result = result or {}
    # smoke caught the calling process's exception: its traceback is in the result
    text = log + "\n" + str(result.get("traceback", ""))
    error = error_signature(text, outcome.error) if outcome.status == "error" else ""
    mode, note = selected_mode(log, result.get("cudagraph_mode"))
    backend = result.get("attention_backend") or smoke_backend(log)
    return replace(
        outcome,
        error=error,
        selected_backend=_enum_name(backend),
        selected_mode=mode if outcome.status == "ok" else "",
        mode_note=note,
    )


def smoke_backend(log: str) -> str | None:
    """The backend vLLM announced, read by the smoke test's own parser."""
    from vllm_pin.smoke import _attention_backend

    return _attention_backend(log)


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        return f"killed by signal {signal.Signals(-returncode).name}, no traceback"
    return f"exit status {returncode}, no traceback"


def skipped(config: Config, reason: str) -> Outcome:
    """An outcome for a configuration that was not run, and why."""
    return Outcome(
        config.name,
        config.run,
        config.backend,
        config.mode,
        config.batch_invariant,
        config.enforce_eager,
        "skipped",
        reason,
        "",
        "",
        "",
        (),
        0.0,
        0.0,
        0.0,
        0.0,
    )


def skip_reason(probe: Outcome) -> str:
    """Why a backend's other configurations were not run."""
    return f"{_NOT_RUN}{probe.config} failed: {probe.error}"


def unlocks_dependents(probe: Outcome) -> bool:
    """Whether a backend's probe result says its other modes are worth running."""
    return probe.status == "ok" or bool(_CUDAGRAPH_ERROR.search(probe.error))


# -- consistency ---------------------------------------------------------------------------


def check_consistency(outcomes: Sequence[Outcome]) -> Consistency:
    """Compare the greedy token ids of every configuration that ran.

    The reference is the default configuration when it ran, else the most common ids. A
    configuration run several times whose runs disagree is also listed as nondeterministic.
    """
    ran = sorted((o for o in outcomes if o.status == "ok"), key=lambda o: o.label)
    if not ran:
        return Consistency("", (), (), (), ())
    default = next((o for o in ran if o.label == config_name("", "", False, False)), None)
    if default is not None:
        ref_label, ref_ids = default.label, default.token_ids
    else:
        ref_ids = Counter(o.token_ids for o in ran).most_common(1)[0][0]
        ref_label = next(o.label for o in ran if o.token_ids == ref_ids)
    by_config: dict[str, set[tuple[tuple[int, ...], ...]]] = {}
    for o in ran:
        by_config.setdefault(o.config, set()).add(o.token_ids)
    return Consistency(
        reference=ref_label,
        token_ids=ref_ids,
        agree=tuple(o.label for o in ran if o.token_ids == ref_ids),
        diverge=tuple(o.label for o in ran if o.token_ids != ref_ids),
        nondeterministic=tuple(sorted(c for c, ids in by_config.items() if len(ids) > 1)),
    )


# -- the run -------------------------------------------------------------------------------


@dataclass
class _Running:
    config: Config
    proc: subprocess.Popen[bytes]
    log_path: Path
    result_path: Path
    started: float
    timeout: float
    timed_out: bool = False


@dataclass
class Sweep:
    """Runs a plan with ``jobs`` processes at a time and records each outcome in ``work``."""

    work: Path
    knobs: Knobs
    model_dir: Path
    base_kwargs: Mapping[str, Any]
    jobs: int
    timeout: float
    deadline: float | None
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def result_path(self, config: Config) -> Path:
        return self.work / "results" / f"{config.stem}.json"

    def run(self, the_plan: Plan) -> dict[str, Outcome]:
        """Run every configuration not already recorded in the work dir (a resumed sweep)."""
        for d in ("results", "logs", "raw", "cache"):
            (self.work / d).mkdir(parents=True, exist_ok=True)
        for config in the_plan.all():
            recorded = load_outcome(self.result_path(config))
            if recorded is not None and recorded.status != "skipped":
                self.outcomes[config.label] = recorded
        pending = [c for c in the_plan.probes if c.label not in self.outcomes]
        probes = {c.label for c in the_plan.probes}
        for backend, deps in the_plan.dependents.items():
            label = Config(backend=backend).label
            probe = self.outcomes.get(label)
            if probe is not None or not backend or label not in probes:
                pending += self._release(probe, deps)
        running: list[_Running] = []
        total = len(the_plan.all())
        while pending or running:
            for r in [r for r in running if self._finished(r)]:
                running.remove(r)
                outcome = self._record(r)
                print(f"gpu-sweep: [{len(self.outcomes)}/{total}] {_line(outcome)}", flush=True)
                if r.config.run == 1 and r.config == Config(backend=r.config.backend):
                    pending += self._release(
                        outcome,
                        the_plan.dependents.get(r.config.backend, ()) if r.config.backend else (),
                    )
            while pending and len(running) < self.jobs:
                config = pending.pop(0)
                left = None if self.deadline is None else self.deadline - time.monotonic()
                if left is not None and left < 60:
                    self._save(skipped(config, "not started: the sweep's --budget ran out"))
                    continue
                running.append(
                    self._start(config, self.timeout if left is None else min(self.timeout, left))
                )
            time.sleep(0.5)
        return self.outcomes

    def _release(self, probe: Outcome | None, deps: Iterable[Config]) -> list[Config]:
        """The dependents to run now; the others are recorded as skipped."""
        todo = [c for c in deps if c.label not in self.outcomes]
        if probe is None or unlocks_dependents(probe):
            return todo
        for c in todo:
            self._save(skipped(c, skip_reason(probe)))
        return []

    def _start(self, config: Config, timeout: float) -> _Running:
        log_path = self.work / "logs" / f"{config.stem}.log"
        raw_path = self.work / "raw" / f"{config.stem}.json"
        raw_path.unlink(missing_ok=True)
        spec = {
            "model_dir": str(self.model_dir),
            "llm_kwargs": self.knobs.llm_kwargs(config, self.base_kwargs),
            "prompts": list(PROMPTS),
            "max_tokens": MAX_TOKENS,
            "result": str(raw_path),
        }
        spec_path = self.work / "raw" / f"{config.stem}.spec.json"
        spec_path.write_text(json.dumps(spec, indent=1), encoding="utf-8")
        env = child_env(os.environ, self.knobs.env(config), self.work / "cache" / config.stem)
        with log_path.open("wb") as log:
            log.write(
                f"# {config.label}: {json.dumps(spec)} env {self.knobs.env(config)}\n".encode()
            )
            log.flush()
            proc = subprocess.Popen(
                [sys.executable, "-m", "vllm_pin.gpu_sweep", str(spec_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        return _Running(config, proc, log_path, raw_path, time.monotonic(), timeout)

    def _finished(self, r: _Running) -> bool:
        if r.proc.poll() is not None:
            return True
        if time.monotonic() - r.started > r.timeout:
            _kill_group(r.proc)
            r.proc.wait()
            r.timed_out = True
            return True
        return False

    def _record(self, r: _Running) -> Outcome:
        wall = time.monotonic() - r.started
        code = None if r.timed_out else r.proc.returncode
        _kill_group(r.proc)  # the engine process it left behind, if any
        if r.timed_out and r.timeout < self.timeout:  # cut short by --budget: rerun on resume
            outcome = skipped(r.config, "stopped: the sweep's --budget ran out while it ran")
            self._save(outcome)
            return outcome
        log = r.log_path.read_text(encoding="utf-8", errors="replace")
        result = _read_json(r.result_path)
        outcome = outcome_from_run(
            r.config, log, result, returncode=code, wall_s=wall, timeout_s=r.timeout
        )
        self._save(outcome)
        return outcome

    def _save(self, outcome: Outcome) -> None:
        self.outcomes[outcome.label] = outcome
        config = Config(
            outcome.backend,
            outcome.cudagraph_mode,
            outcome.batch_invariant,
            outcome.enforce_eager,
            outcome.run,
        )
        data = {k: v for k, v in asdict(outcome).items() if k != "meta"}
        atomic_write_text(self.result_path(config), json.dumps(data, indent=1) + "\n")


def child_env(parent: Mapping[str, str], extra: Mapping[str, str], cache: Path) -> dict[str, str]:
    """The caller's environment without its VLLM_* settings, plus the sweep's own.

    Each configuration gets its own vLLM cache so no run reuses another's compiled graphs
    (compile times stay comparable, and two runs of one config are really independent).
    """
    env = {k: v for k, v in parent.items() if not k.startswith("VLLM_")}
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, parent.get("PYTHONPATH")) if p)
    env.update(BASE_ENV)
    env["VLLM_CACHE_ROOT"] = str(cache)
    env.update(extra)
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def load_outcome(path: Path) -> Outcome | None:
    """An outcome recorded in a work dir, or None when there is none (or it is unreadable)."""
    data = _read_json(path)
    if data is None:
        return None
    data["token_ids"] = tuple(tuple(r) for r in data.get("token_ids", ()))
    try:
        return Outcome(**data)
    except TypeError:
        return None


def _line(o: Outcome) -> str:
    what = f"{o.selected_backend or o.backend or '?'}/{o.selected_mode or '?'}"
    detail = f"{what} ids={[list(r) for r in o.token_ids]}" if o.status == "ok" else o.error
    return f"{o.label:<42} {o.status:<7} {o.wall_s:>6.1f}s  {detail}"


# -- the machine and the release -----------------------------------------------------------


def gpu_info() -> tuple[str, str, str]:
    """Name, driver and compute capability of GPU 0, from nvidia-smi."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise VllmPinError(f"nvidia-smi failed ({exc}); the sweep needs an NVIDIA GPU") from None
    fields = [f.strip() for f in out.splitlines()[0].split(",")]
    if len(fields) != 3:
        raise VllmPinError(f"unexpected nvidia-smi output {out!r}")
    return fields[0], fields[1], fields[2]


def gpu_slug(name: str) -> str:
    """``NVIDIA H100 80GB HBM3`` -> ``h100``, ``NVIDIA GeForce RTX 4090`` -> ``rtx-4090``."""
    words = re.split(r"[\s_-]+", name.lower())
    kept = []
    for w in words:
        if w in ("nvidia", "geforce", "tesla"):
            continue
        if re.fullmatch(r"\d+gb|hbm\w*|pcie|sxm\w*|nvl|\d+w", w):
            break
        kept.append(re.sub(r"[^a-z0-9]", "", w))
    slug = "-".join(w for w in kept if w)
    if not slug:
        raise VllmPinError(f"cannot make a file name from GPU {name!r}; pass --gpu-slug")
    return slug


def installed_vllm() -> tuple[Version, Path]:
    """Version and package directory of the vllm this interpreter would import (not imported)."""
    try:
        version = Version(md.version("vllm"))
    except md.PackageNotFoundError:
        raise VllmPinError(
            "vllm is not installed in this interpreter; run the sweep with the python of the "
            "vLLM environment under test"
        ) from None
    except InvalidVersion as exc:
        raise VllmPinError(f"installed vllm has an invalid version: {exc}") from None
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        raise VllmPinError("vllm is installed but its package directory cannot be found")
    return version, Path(next(iter(spec.submodule_search_locations)))


def release_knobs(release: Version, timeline: Path, package_dir: Path | None) -> Knobs:
    """The release's knobs from the timeline, else from the installed vLLM's source files."""
    if timeline.is_file():
        entry = load_timeline(timeline).get(release)
        if entry is not None and entry.attention_backends:
            return knobs_from_entry(entry, f'{timeline.name} [vllm."{release}"]')
    if package_dir is None:
        raise VllmPinError(f"{timeline} has no entry for vllm {release}; refresh the matrix")
    site = package_dir.parent
    files = {
        p: (site / p).read_text(encoding="utf-8")
        for p in sorted(vllm_source.MEMBER_PATTERNS)
        if (site / p).is_file()
    }
    entry = entry_from_files(files)
    found = entry.sources.get("attention-backends", "")
    return knobs_from_entry(entry, f"installed vllm {release} source ({found or 'none'})")


# -- assembling the observation ------------------------------------------------------------


def build_observation(meta: Meta, outcomes: Iterable[Outcome]) -> Observation:
    """The observation file's content: outcomes in a fixed order, consistency computed."""
    ordered = sorted(
        outcomes,
        key=lambda o: Config(
            o.backend, o.cudagraph_mode, o.batch_invariant, o.enforce_eager, o.run
        ).order(),
    )
    return Observation(meta=meta, consistency=check_consistency(ordered), outcomes=tuple(ordered))


def read_work_dir(work: Path) -> tuple[Meta, list[Outcome]]:
    """The metadata and outcomes a sweep recorded in its work dir."""
    data = _read_json(work / "meta.json")
    if data is None:
        raise VllmPinError(f"{work}/meta.json is missing or unreadable; is {work} a sweep dir?")
    data["release"] = Version(data["release"])
    data["prompts"] = tuple(data["prompts"])
    meta = Meta(**data)
    recorded = [
        o for p in sorted((work / "results").glob("*.json")) if (o := load_outcome(p)) is not None
    ]
    if not recorded:
        raise VllmPinError(f"{work}/results holds no outcomes")
    outcomes = {}
    for o in recorded:
        stem = _stem(o.label)
        log = work / "logs" / f"{stem}.log"
        if log.is_file():
            text = log.read_text(encoding="utf-8", errors="replace")
            o = read_log(o, text, _read_json(work / "raw" / f"{stem}.json"))
        outcomes[o.label] = o
    for label, o in outcomes.items():  # skip reasons quote their probe's (re-read) error
        probe = outcomes.get(config_name(o.backend, "", False, False))
        if o.status == "skipped" and o.error.startswith(_NOT_RUN) and probe is not None:
            outcomes[label] = replace(o, error=skip_reason(probe))
    return meta, list(outcomes.values())


def summary(obs: Observation) -> list[str]:
    """A few lines for the terminal: counts, divergences, failures by signature."""
    counts = Counter(o.status for o in obs.outcomes)
    c = obs.consistency
    lines = [
        f"gpu-sweep: vllm {obs.meta.release} on {obs.meta.gpu}: "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
        f"gpu-sweep: reference {c.reference or '-'} token ids {[list(r) for r in c.token_ids]}",
        f"gpu-sweep: {len(c.agree)} agree; diverging: {', '.join(c.diverge) or 'none'}",
    ]
    if c.nondeterministic:
        lines.append(f"gpu-sweep: different ids on repeated runs: {', '.join(c.nondeterministic)}")
    errors = Counter(o.error for o in obs.outcomes if o.status in ("error", "timeout"))
    lines += [f"gpu-sweep: {n:>3} x {e}" for e, n in errors.most_common()]
    return lines


# -- command line --------------------------------------------------------------------------


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
    work: Path = args.work_dir.resolve()
    if args.from_work_dir:
        meta, outcomes = read_work_dir(work)
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


def _sweep(args: argparse.Namespace, work: Path) -> tuple[Meta, list[Outcome]] | None:
    """Run the sweep; None after --dry-run."""
    from vllm_pin.timeline import default_timeline_path

    release, package_dir = installed_vllm()
    knobs = release_knobs(release, args.timeline or default_timeline_path(), package_dir)
    the_plan = plan(knobs, args.repeat)
    if args.only:
        keep = set(args.only)
        unknown = keep - {c.name for c in the_plan.all()}
        if unknown:
            raise VllmPinError(f"--only {sorted(unknown)}: no such configuration")
        the_plan = Plan(
            tuple(c for c in the_plan.probes if c.name in keep),
            {b: tuple(c for c in cs if c.name in keep) for b, cs in the_plan.dependents.items()},
        )
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
        torch=_torch_version(),
        configs_source=knobs.source,
        llm_kwargs=json.dumps(base, sort_keys=True),
        prompts=PROMPTS,
        max_tokens=MAX_TOKENS,
    )
    work.mkdir(parents=True, exist_ok=True)
    meta_json = {k: (str(v) if isinstance(v, Version) else v) for k, v in asdict(meta).items()}
    atomic_write_text(work / "meta.json", json.dumps(meta_json, indent=1) + "\n")
    model_dir = work / "tiny-llama"
    if not (model_dir / "model.safetensors").is_file():
        from vllm_pin.smoke import make_tiny_llama

        make_tiny_llama(model_dir)
    deadline = None if args.budget is None else time.monotonic() + args.budget
    sweep = Sweep(work, knobs, model_dir, base, args.jobs, args.timeout, deadline)
    outcomes = sweep.run(the_plan)
    return meta, [outcomes[c.label] for c in the_plan.all() if c.label in outcomes]


def _torch_version() -> str:
    """torch.__version__ (with its local label, e.g. +cu130, which the metadata may lack)."""
    try:
        return str(importlib.import_module("torch").__version__)
    except ImportError:
        return ""


def _worker(spec_path: Path) -> int:
    """One configuration, in its own process: the smoke test's generate, result as JSON.

    Ends with os._exit so vLLM's engine shutdown cannot hang the sweep; the parent kills
    what is left of the process group.
    """
    from vllm_pin.smoke import run_generate

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    result = run_generate(
        Path(spec["model_dir"]),
        device="cuda",
        llm_kwargs=spec["llm_kwargs"],
        prompts=spec["prompts"],
        max_tokens=spec["max_tokens"],
    )
    atomic_write_text(Path(spec["result"]), json.dumps(result, indent=1) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if result.get("status") == "passed" else 1)


if __name__ == "__main__":  # the per-configuration process; vLLM re-imports it when it spawns
    _worker(Path(sys.argv[1]))
