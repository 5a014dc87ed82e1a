"""What a gpu-sweep runs: the configurations of one release, and the knobs that set them.

Which backends and modes exist comes from matrix/timeline.toml for the release, else from the
installed vLLM's source, read statically. Each backend's probe (vLLM's default cudagraph mode)
runs first, so a backend that cannot work on this GPU is not tried with every mode.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from packaging.version import Version

from vllm_pin.errors import VllmPinError
from vllm_pin.matrix import vllm_source
from vllm_pin.matrix.observed import MODE_ORDER, config_name
from vllm_pin.matrix.timeline import TimelineEntry, load_timeline
from vllm_pin.matrix.vllm_source import entry_from_files


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


@dataclass(frozen=True)
class Plan:
    """Probes run first; a backend's other configurations wait for its probe."""

    probes: tuple[Config, ...]
    dependents: Mapping[str, tuple[Config, ...]]

    def all(self) -> list[Config]:
        return [*self.probes, *(c for cs in self.dependents.values() for c in cs)]

    def only(self, names: Sequence[str]) -> Plan:
        """The plan cut down to the configurations named (`--only`); an error for unknown ones."""
        keep = set(names)
        unknown = keep - {c.name for c in self.all()}
        if unknown:
            raise VllmPinError(f"--only {sorted(unknown)}: no such configuration")
        return Plan(
            tuple(c for c in self.probes if c.name in keep),
            {b: tuple(c for c in cs if c.name in keep) for b, cs in self.dependents.items()},
        )


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
