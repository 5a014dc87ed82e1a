"""`vllm-pin timeline NAME`: the first and last release that has an env var/backend/mode/knob."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from vllm_pin.matrix.knowledge import Replacement
from vllm_pin.matrix.model import load_matrix
from vllm_pin.matrix.timeline import describe, load_default, presence, suggestions


@dataclass(frozen=True)
class TimelineOptions:
    """What `vllm-pin timeline` was asked."""

    name: str
    json: bool = False
    timeline: Path | None = None


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin timeline`."""
    parser.add_argument(
        "name", help="a VLLM_* variable, an attention backend, a cudagraph mode or a knob"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--timeline", type=Path, help="timeline.toml to read (default: matrix/timeline.toml)"
    )


def run(args: argparse.Namespace) -> int:
    """Print first/last release of a name; exit 1 when no release has it."""
    return timeline(TimelineOptions(name=args.name, json=args.json, timeline=args.timeline))


def timeline(opts: TimelineOptions) -> int:
    """Print first/last release of a name; exit 1 when no release has it."""
    entries = load_default(opts.timeline)
    newest = max(entries)
    found = presence(entries, opts.name)
    close = [] if found else suggestions(entries, opts.name)
    if opts.json:
        print(
            json.dumps(
                {
                    "name": opts.name,
                    "found": [p.as_json(newest) for p in found],
                    "suggestions": close,
                    "instead": [
                        {"vllm": str(r.vllm), "instead": r.instead, "source": r.source}
                        for r in ([] if found else replacements_for(opts.name))
                    ],
                    "releases": [str(min(entries)), str(newest)],
                },
                indent=2,
            )
        )
        return 0 if found else 1
    for p in found:
        print(describe(p, newest))
    if not found:
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        print(
            f"no release has {opts.name} (checked {len(entries)} releases, "
            f"{min(entries)}..{newest}){hint}"
        )
        for r in replacements_for(opts.name):
            print(f"  instead, for vllm {r.vllm}: {r.instead} ({r.source})")
        return 1
    return 0


def replacements_for(name: str) -> list[Replacement]:
    """The curated real knobs for a name (e.g. VLLM_CUDAGRAPH_MODE), in curated order."""
    return [r for r in load_matrix().knowledge.replacements if r.knob == name]
