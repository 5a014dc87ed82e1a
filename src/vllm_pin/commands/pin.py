"""`vllm-pin pin`: requirements-vllm.txt, pyproject extras, hashed locks, and `envs/`.

This module is the command line only: its options, read into :class:`PinOptions`. The work
(one release's outputs checked and then written, or `--all`) is :mod:`vllm_pin.pin.generate`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vllm_pin.commands import _options
from vllm_pin.pin.cutoff import EXCLUDE_NEWER_DAYS
from vllm_pin.pin.generate import generate
from vllm_pin.pin.options import IndexOptions, PinOptions
from vllm_pin.pin.pins import DEFAULT_OUTPUT, torch_backend


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin pin` (also `tools/pin.py`)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "examples:\n"
        "  vllm-pin pin --vllm 0.10.1.1                  # ./requirements-vllm.txt\n"
        "  vllm-pin pin --vllm 0.10 --explain            # series default, with provenance\n"
        "  vllm-pin pin --vllm latest --variant cpu -o req-cpu.txt\n"
        "  vllm-pin pin --vllm 0.10.1.1 --pyproject pyproject.toml --extra vllm\n"
        "  vllm-pin pin --vllm 0.10.1.1 --cuda 12.8      # torch 2.7.1+cu128 (e.g. RTX 50xx)\n"
        "  vllm-pin pin --vllm 0.10.1.1 --lock           # + requirements-vllm.lock (uv)\n"
        "  vllm-pin pin --all [--only 0.10 0.32-cpu] [--check]   # envs/<name>/...\n"
        "sources: --index-url/--extra-index-url/--find-links, else $VLLM_PIN_INDEX_URL,\n"
        "  $VLLM_PIN_EXTRA_INDEX_URL, $VLLM_PIN_FIND_LINKS (space separated), else the\n"
        "  variant's index (cpu: https://download.pytorch.org/whl/cpu).\n"
        "  `--extra-index-url none` drops that; `--index-url none` means no index at all.\n"
        "  --find-links dirs are used to lock but never written into the files; while one\n"
        "  is given, the variant's own index is written but not queried.\n"
        f"locks see uploads up to the release's upload time + {EXCLUDE_NEWER_DAYS} days (uv\n"
        "  --exclude-newer; find-links wheels are never excluded); --exclude-newer overrides.\n"
        "--all keeps each env's python-version, python-platform, without, a given\n"
        "  --exclude-newer and --exclude-newer-package (env.toml); `--exclude-newer default`\n"
        "  returns to the rule, `--exclude-newer-package none` drops the exceptions.\n"
        "exit: 0 ok, 1 stale (--check) or an undeclared pyproject clash, 2 bad input."
    )
    what = parser.add_argument_group("what to pin")
    what.add_argument(
        "--vllm",
        default="latest",
        metavar="VERSION",
        help="exact release (0.10.1.1), series (0.10: its default) or 'latest' (default)",
    )
    # no choices: an unknown variant is reported against the matrix's curated variants
    what.add_argument("--variant", default="cuda", help="cuda (PyPI wheels, default) or cpu")
    _options.add_machine(what, help="default x86_64")
    what.add_argument(
        "--cuda",
        default="",
        metavar="X.Y",
        help="torch, torchvision, torchaudio as that CUDA build (+cu128) from the PyTorch index",
    )
    what.add_argument(
        "--torch-backend",
        default="",
        metavar="cuXXX",
        help="the same as --cuda, spelled as uv does (cu128)",
    )
    what.add_argument("--allow-yanked", action="store_true", help="accept a yanked release")
    _options.add_matrix_dir(what)
    out = parser.add_argument_group("outputs")
    out.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help=f"requirements file to write (default: ./{DEFAULT_OUTPUT}; "
        "with --pyproject, none unless given)",
    )
    out.add_argument("--explain", action="store_true", help="print where each pin came from")
    out.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the output (or envs/ with --all) is stale",
    )
    py = parser.add_argument_group("pyproject.toml extra")
    py.add_argument("--pyproject", type=Path, metavar="PATH", help="add/update an extra here")
    py.add_argument("--extra", metavar="NAME", help="name of the extra (with --pyproject)")
    py.add_argument(
        "--conflict-with",
        action="append",
        default=[],
        metavar="EXTRA",
        help="also declare this existing extra as a uv conflict of the new one (repeatable)",
    )
    lk = parser.add_argument_group("hashed lock (uv pip compile --generate-hashes)")
    lk.add_argument("--lock", action="store_true", help="also write a full hashed lock")
    lk.add_argument(
        "--lock-output", metavar="PATH", help="lock path (default: the output with .lock suffix)"
    )
    lk.add_argument(
        "--python-version",
        default="",
        metavar="X.Y",
        help="target CPython (default: newest of 3.9-3.13 the release allows)",
    )
    lk.add_argument(
        "--python-platform",
        default="",
        metavar="UV_PLATFORM",
        help="uv target platform (default: <machine>-manylinux_2_28, or the wheel's level)",
    )
    lk.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="PKG",
        help="leave a declared dependency out of the lock (e.g. CUDA torchvision for cpu)",
    )
    lk.add_argument(
        "--exclude-newer",
        default="",
        metavar="DATE|none",
        help=f"newest upload a lock may use (default: release upload + {EXCLUDE_NEWER_DAYS}d)",
    )
    lk.add_argument(
        "--exclude-newer-package",
        action="append",
        default=[],
        metavar="NAME=DATE",
        help="another cutoff for one package (repeatable; 'none' clears them)",
    )
    lk.add_argument("--timeout", type=float, default=600.0, help="seconds per uv run")
    lk.add_argument(
        "--offline", action="store_true", help="never run uv: no --lock, offline clash check"
    )
    _options.add_index_options(parser)
    env = parser.add_argument_group("envs/ (every series default and variant)")
    env.add_argument("--all", action="store_true", help="regenerate envs/<name>/ for every env")
    env.add_argument("--only", nargs="+", default=[], metavar="NAME", help="e.g. 0.10 0.32-cpu")
    env.add_argument("--envs-dir", type=Path, default=Path("envs"), help="default: ./envs")
    env.add_argument("--no-lock", action="store_true", help="--all without locks (offline)")
    env.add_argument(
        "--relock", action="store_true", help="re-lock even where the lock's inputs are unchanged"
    )
    env.add_argument("-j", "--jobs", type=int, default=4, help="parallel locks (default 4)")


def run(args: argparse.Namespace) -> int:
    """Turn the parsed options into :class:`PinOptions` and pin."""
    return generate(options_from(args))


def options_from(args: argparse.Namespace) -> PinOptions:
    """The typed options of :func:`configure`'s parser."""
    return PinOptions(
        vllm=args.vllm,
        variant=args.variant,
        machine=_options.machine_from(args),
        torch_build=torch_backend(args.cuda, args.torch_backend),
        allow_yanked=args.allow_yanked,
        matrix_dir=args.matrix_dir,
        output=args.output,
        explain=args.explain,
        check=args.check,
        pyproject=args.pyproject,
        extra=args.extra or "",
        conflict_with=tuple(args.conflict_with),
        lock=args.lock,
        lock_output=args.lock_output or "",
        python_version=args.python_version,
        python_platform=args.python_platform,
        without=tuple(args.without),
        exclude_newer=args.exclude_newer,
        exclude_newer_package=tuple(args.exclude_newer_package),
        timeout=args.timeout,
        offline=args.offline,
        index=IndexOptions(
            index_url=args.index_url,
            no_index=args.no_index,
            extra_index_urls=_tuple_or_none(args.extra_index_url),
            find_links=_tuple_or_none(args.find_links),
        ),
        all=args.all,
        only=tuple(args.only),
        envs_dir=args.envs_dir,
        no_lock=args.no_lock,
        relock=args.relock,
        jobs=args.jobs,
    )


def _tuple_or_none(values: list[str] | None) -> tuple[str, ...] | None:
    """A repeatable option's values; ``None`` (not given) stays distinct from none given."""
    return None if values is None else tuple(values)
