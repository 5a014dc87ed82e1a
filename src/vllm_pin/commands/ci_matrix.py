"""`vllm-pin ci-matrix`: the provision sessions as a GitHub Actions matrix (JSON).

A workflow job reads it with ``fromJSON`` and fans the sessions out over runners, one
``nox -s <session>`` per job (docs/provision.md has a complete workflow).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from vllm_pin.errors import VllmPinError
from vllm_pin.names import VARIANTS, Variant
from vllm_pin.provision.ci_matrix import matrix_entries
from vllm_pin.provision.envs import env_specs


@dataclass(frozen=True)
class CiMatrixOptions:
    """What `vllm-pin ci-matrix` was asked to print, typed."""

    root: Path
    #: only these variants (none: all)
    variants: tuple[Variant, ...]
    #: only sessions with every one of these tags
    tags: tuple[str, ...]
    #: JSON indentation; None: one line
    indent: int | None


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin ci-matrix`."""
    parser.add_argument(
        "--variant",
        action="append",
        choices=VARIANTS,
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
    variants: list[Variant] = args.variant  # argparse's choices checked them
    options = CiMatrixOptions(
        root=Path(args.root).resolve(),
        variants=tuple(variants),
        tags=tuple(args.tag),
        indent=args.indent,
    )
    return print_matrix(options)


def print_matrix(options: CiMatrixOptions) -> int:
    """The command's work on typed options; the exit code."""
    specs = env_specs(options.root)
    entries = matrix_entries(specs, options.variants, options.tags)
    if not entries:
        known = sorted({t for s in specs for t in s.tags})
        raise VllmPinError(
            f"no provision session has variant {'/'.join(options.variants) or 'any'} and tags "
            f"{'+'.join(options.tags) or 'any'}; known tags: {', '.join(known)}"
        )
    print(json.dumps({"include": entries}, indent=options.indent))
    return 0
