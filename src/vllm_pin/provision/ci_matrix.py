"""`vllm-pin ci-matrix`: the provision sessions as a GitHub Actions matrix (JSON).

A workflow job reads it with ``fromJSON`` and fans the sessions out over runners, one
``nox -s <session>`` per job (docs/provision.md has a complete workflow).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vllm_pin.errors import VllmPinError
from vllm_pin.provision.envs import EnvSpec, env_specs


def matrix_entries(
    specs: list[EnvSpec], variants: list[str], tags: list[str]
) -> list[dict[str, Any]]:
    """Sessions of the given variants (any; none = all) that carry every given tag."""
    chosen = [
        s
        for s in specs
        if (not variants or s.variant in variants) and all(t in s.tags for t in tags)
    ]
    return [
        {
            "session": s.session,
            "env": s.name,
            "variant": s.variant,
            "distribution": s.distribution,
            "release": str(s.release),
            "python": s.python,
            "tags": list(s.tags),
        }
        for s in chosen
    ]


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin ci-matrix`."""
    parser.add_argument(
        "--variant",
        action="append",
        choices=("cuda", "cpu"),
        default=[],
        help="only this variant; repeatable (default: all)",
    )
    parser.add_argument(
        "--tag",
        action="append",
        default=[],
        help="only sessions with this nox tag (provision, cuda, cpu, ci); repeatable: all apply",
    )
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="checkout with envs/")
    parser.add_argument("--indent", type=int, default=None, help="pretty-print (default: one line)")


def run(args: argparse.Namespace) -> int:
    """Print ``{"include": [...]}``; an empty selection is an error (Actions rejects it)."""
    specs = env_specs(Path(args.root).resolve())
    entries = matrix_entries(specs, args.variant, args.tag)
    if not entries:
        known = sorted({t for s in specs for t in s.tags})
        raise VllmPinError(
            f"no provision session has variant {'/'.join(args.variant) or 'any'} and tags "
            f"{'+'.join(args.tag) or 'any'}; known tags: {', '.join(known)}"
        )
    print(json.dumps({"include": entries}, indent=args.indent))
    return 0
