"""`vllm-pin site -o DIR`: the matrix as a static site (needs the `[site]` extra: Jinja2)."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from vllm_pin.commands._options import add_matrix_dir
from vllm_pin.matrix.model import load_matrix
from vllm_pin.site.render import build_site


@dataclass(frozen=True)
class SiteOptions:
    """What `vllm-pin site` was asked."""

    output: Path
    matrix_dir: Path | None = None


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin site`."""
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="DIR", help="directory to write"
    )
    add_matrix_dir(parser)


def run(args: argparse.Namespace) -> int:
    """Write the site; 0."""
    return site(SiteOptions(output=args.output, matrix_dir=args.matrix_dir))


def site(opts: SiteOptions) -> int:
    """Write the site into ``opts.output`` and say what was written; 0."""
    start = time.perf_counter()
    result = build_site(load_matrix(opts.matrix_dir), opts.output)
    print(
        f"wrote {result.files} files ({result.bytes / 1e6:.1f} MB) to {result.out} "
        f"in {time.perf_counter() - start:.1f} s; open {result.out / 'index.html'}"
    )
    return 0
