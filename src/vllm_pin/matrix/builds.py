"""Builds: torch's CUDA builds and their GPU architectures, vLLM's other build channels.

Parsed from ``matrix/curated.toml`` (``[torch-index]``, ``[torch-builds."X"]``,
``[[vllm-builds]]``, ``[community-builds.*]``, ``[stable-abi.*]``; schema in
docs/matrix-schema.md). Which GPUs a torch build runs on is a list of ``sm_XX`` per build,
some read from the PyPI wheels (``verified``), the rest transcribed from PyTorch's build
scripts and marked unverified wherever they are shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from vllm_pin.errors import MatrixError
from vllm_pin.matrix.tomlfields import Fields, table_name
from vllm_pin.names import build_of_cuda, cuda_of_build

__all__ = [
    "Builds",
    "CommunityBuild",
    "StableAbi",
    "TorchBuilds",
    "VllmChannel",
    "VllmCuda",
    "gpu_runs",
    "parse_builds",
    "parse_sm",
]

_BUILD = re.compile(r"^(cu\d{3}|cpu|rocm\d+(\.\d+)*)$")
_SM = re.compile(r"^sm_(\d+)(\d)([a-z]?)$")


def parse_sm(sm: str) -> tuple[int, int] | None:
    """``sm_120`` -> (12, 0), ``sm_86`` -> (8, 6); None when it is not an sm_XX name."""
    m = _SM.match(sm)
    return (int(m.group(1)), int(m.group(2))) if m else None


def gpu_runs(gpu: str, sass: tuple[str, ...], ptx: tuple[str, ...] = ()) -> bool:
    """Whether a GPU runs kernels built for ``sass`` archs (and ``ptx`` archs as PTX).

    CUDA's rule: a cubin for sm_XY runs on sm_XZ with Z >= Y (same major); PTX for sm_XY is
    JIT-compiled on any GPU of compute capability >= X.Y.
    """
    have = parse_sm(gpu)
    if have is None:
        return False
    for arch in sass:
        built = parse_sm(arch)
        if built is not None and built[0] == have[0] and built[1] <= have[1]:
            return True
    return any((p := parse_sm(arch)) is not None and p <= have for arch in ptx)


@dataclass(frozen=True)
class TorchBuilds:
    """The builds one torch version exists as, and the GPU archs each covers."""

    version: Version
    default_cuda: str  # the CUDA of PyPI's x86_64 wheel
    aarch64_default_cuda: str  # "" = PyPI's aarch64 wheel is a CPU-only build
    builds: tuple[str, ...]
    builds_note: str  # where the list of builds is a guess or recalled ("" = scraped)
    arch: Mapping[str, tuple[str, ...]]  # x86_64 build -> sm list
    arch_aarch64: Mapping[str, tuple[str, ...]]
    ptx: Mapping[str, tuple[str, ...]]
    verified: frozenset[str]  # builds whose x86_64 sm list was read from the wheel
    url_template: str
    source: str
    reason: str

    def default_cuda_on(self, machine: str) -> str:
        """The CUDA of PyPI's wheel for ``machine``; "" where it is a CPU-only build."""
        return self.aarch64_default_cuda if machine == "aarch64" else self.default_cuda

    def cuda_builds(self) -> tuple[str, ...]:
        """The ``cuXXX`` builds, oldest CUDA first."""
        cu = [b for b in self.builds if b.startswith("cu")]
        return tuple(sorted(cu, key=lambda b: Version(cuda_of_build(b))))

    def archs(self, build: str, machine: str = "x86_64") -> tuple[str, ...] | None:
        """The sm list of ``build`` on ``machine``; None when the table does not know it."""
        table = self.arch_aarch64 if machine == "aarch64" else self.arch
        return table.get(build)

    def is_verified(self, build: str, machine: str = "x86_64") -> bool:
        """Whether the sm list was read from a wheel (x86_64 lists; aarch64 of the default)."""
        if machine == "aarch64":
            return build in self.arch_aarch64 and build == build_of_cuda(self.aarch64_default_cuda)
        return build in self.verified

    def runs_on(self, build: str, gpu: str, machine: str = "x86_64") -> bool | None:
        """Whether ``gpu`` (sm_XX) has kernels in ``build``; None when the sm list is unknown."""
        archs = self.archs(build, machine)
        if archs is None:
            return None
        return gpu_runs(gpu, archs, self.ptx.get(build, ()) if machine != "aarch64" else ())

    def index_url(self, build: str) -> str:
        """The PyPI-compatible index of one build (``.../whl/cu128``)."""
        return self.url_template.format(build=build)

    @property
    def where(self) -> str:
        return f'curated.toml [torch-builds."{self.version}"] ({self.source})'


@dataclass(frozen=True)
class VllmChannel:
    """A place vLLM publishes builds other than the PyPI ``vllm`` wheel."""

    id: str
    builds: tuple[str, ...]
    first: Version | None  # None: first release not established
    last: Version | None  # None: still published (or not established)
    url_template: str
    what: str
    confidence: str
    source: str
    reason: str

    def covers(self, version: Version, build: str) -> bool:
        """Whether the channel is known to carry ``build`` for release ``version``."""
        if build not in self.builds or self.first is None or version < self.first:
            return False
        return self.last is None or version <= self.last


@dataclass(frozen=True)
class VllmCuda:
    """The CUDA the PyPI vllm wheel of some releases is compiled with (not its torch's)."""

    vllm: SpecifierSet
    cuda: str
    confidence: str
    source: str
    reason: str


@dataclass(frozen=True)
class CommunityBuild:
    """A distribution on PyPI that vllm-project does not publish."""

    distribution: str
    publisher: str
    repo: str
    note: str
    source: str
    reason: str


@dataclass(frozen=True)
class StableAbi:
    """A package built on torch's stable ABI from ``first``: no torch pin, on purpose."""

    package: str
    first: Version
    torch: SpecifierSet  # the torch versions upstream supports it with
    what: str
    sources: tuple[str, ...]
    reason: str

    def applies(self, version: Version) -> bool:
        return version >= self.first


@dataclass(frozen=True)
class Builds:
    """Everything curated.toml says about builds, typed and cross-checked."""

    torch: Mapping[Version, TorchBuilds]
    channels: tuple[VllmChannel, ...]
    community: Mapping[str, CommunityBuild]
    stable_abi: Mapping[str, StableAbi]
    vllm_cuda: tuple[VllmCuda, ...] = ()

    def torch_builds(self, version: Version) -> TorchBuilds | None:
        """The builds of a torch version (its local label ignored: ``2.7.1+cu126`` -> 2.7.1)."""
        return self.torch.get(Version(version.public))

    def pypi_vllm_cuda(self, version: Version) -> VllmCuda | None:
        """Where curated data says the PyPI vllm wheel's CUDA differs from its torch's."""
        return next((v for v in self.vllm_cuda if v.vllm.contains(version, True)), None)

    def channels_with(self, version: Version, build: str) -> list[VllmChannel]:
        return [c for c in self.channels if c.covers(version, build)]


# -- parsing ------------------------------------------------------------------------------


def _builds_list(entry: Fields, key: str) -> tuple[str, ...]:
    items = entry.strings(key)
    for item in items:
        if not _BUILD.match(item):
            raise entry.fail(f"field {key!r}: {item!r} is not a build (cu128, cpu, rocm6.3)")
    return items


def _sm_table(
    entry: Fields, version: str, key: str, builds: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    raw = entry.opt(key, dict, {})
    sub = entry.at(table_name("torch-builds", version, key), raw)
    out: dict[str, tuple[str, ...]] = {}
    for build in raw:
        if build not in builds:
            raise sub.fail(f"{build!r} is not one of the version's builds ({', '.join(builds)})")
        archs = sub.strings(build)
        bad = [a for a in archs if parse_sm(a) is None]
        if bad:
            raise sub.fail(f"field {build!r}: {bad[0]!r} is not an sm_XX architecture")
        out[build] = archs
    return out


def _parse_torch(top: Fields, key: str, data: object, template: str) -> TorchBuilds:
    e = top.at(table_name("torch-builds", key), data)
    builds = _builds_list(e, "builds")
    default = e.text("default-cuda")
    aarch64 = e.opt("aarch64-default-cuda", str, "")
    for cuda in filter(None, (default, aarch64)):
        if build_of_cuda(cuda) not in builds:
            raise e.fail(f"default CUDA {cuda} has no build {build_of_cuda(cuda)} in 'builds'")
    arch = _sm_table(e, key, "arch", builds)
    ptx = _sm_table(e, key, "ptx", builds)
    verified = frozenset(_builds_list(e, "arch-verified"))
    for build in verified - set(arch):
        raise e.fail(f"'arch-verified' names {build!r}, which has no [arch] list")
    for build, archs in ptx.items():
        if not set(archs) <= set(arch.get(build, ())):
            raise e.fail(f"[ptx] {build}: PTX archs must also be in [arch] {build}")
    notes = [e.opt(k, str, "") for k in ("builds-confidence", "rocm-builds-confidence")]
    return TorchBuilds(
        version=e.name_version(key),
        default_cuda=default,
        aarch64_default_cuda=aarch64,
        builds=builds,
        builds_note="; ".join(n for n in notes if n),
        arch=arch,
        arch_aarch64=_sm_table(e, key, "arch-aarch64", builds),
        ptx=ptx,
        verified=verified,
        url_template=template,
        source=e.text("source"),
        reason=e.text("reason"),
    )


def _optional_version(e: Fields, key: str) -> Version | None:
    return e.version(key) if e.opt(key, str, "") else None


def _parse_channel(index: int, raw: object) -> VllmChannel:
    ident = raw.get("id") if isinstance(raw, dict) else None
    e = Fields("curated.toml", raw, f"[[vllm-builds]] {ident or f'#{index + 1}'}")
    return VllmChannel(
        id=e.text("id"),
        builds=_builds_list(e, "builds"),
        first=_optional_version(e, "from"),
        last=_optional_version(e, "last"),
        url_template=e.text("url-template"),
        what=e.text("what"),
        confidence=e.opt("confidence", str, ""),
        source=e.text("source"),
        reason=e.text("reason"),
    )


def parse_builds(curated: Mapping[str, Any]) -> Builds:
    """The build tables of a parsed curated.toml; MatrixError naming the entry when bad."""
    top = Fields("curated.toml", curated)
    index = top.at("[torch-index]", top.opt("torch-index", dict, {}))
    template = index.text("url-template") if curated.get("torch-builds") else ""
    if template and "{build}" not in template:
        raise index.fail("field 'url-template' must contain {build}")
    torch = {
        t.version: t
        for t in (
            _parse_torch(top, k, v, template) for k, v in top.opt("torch-builds", dict, {}).items()
        )
    }
    channels = tuple(_parse_channel(i, c) for i, c in enumerate(top.opt("vllm-builds", list, [])))
    if len({c.id for c in channels}) != len(channels):
        raise MatrixError("curated.toml [[vllm-builds]]: duplicate id")
    community = {}
    for dist, data in top.opt("community-builds", dict, {}).items():
        e = top.at(table_name("community-builds", dist), data)
        community[dist] = CommunityBuild(
            distribution=dist,
            publisher=e.text("publisher"),
            repo=e.text("repo"),
            note=e.text("note"),
            source=e.text("source"),
            reason=e.text("reason"),
        )
    stable = {}
    for package, data in top.opt("stable-abi", dict, {}).items():
        e = top.at(table_name("stable-abi", package), data)
        stable[package] = StableAbi(
            package=package,
            first=e.version("from"),
            torch=e.specifier("torch"),
            what=e.text("what"),
            sources=e.strings("sources"),
            reason=e.text("reason"),
        )
    vllm_cuda = []
    for i, raw in enumerate(top.opt("vllm-pypi-cuda", list, [])):
        e = top.at(f"[[vllm-pypi-cuda]] #{i + 1}", raw)
        cuda = e.text("cuda")
        if not _BUILD.match(build_of_cuda(cuda)):
            raise e.fail(f"field 'cuda': {cuda!r} is not a CUDA version like 12.9")
        vllm_cuda.append(
            VllmCuda(
                vllm=e.specifier("vllm"),
                cuda=cuda,
                confidence=e.opt("confidence", str, ""),
                source=e.text("source"),
                reason=e.text("reason"),
            )
        )
    return Builds(
        torch=torch,
        channels=channels,
        community=community,
        stable_abi=stable,
        vllm_cuda=tuple(vllm_cuda),
    )
