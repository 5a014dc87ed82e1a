"""inspect_env and imports_check on fake environments: dist-info folders, hand-made ELF files,
a real venv (no pip) whose interpreter runs them, so `--python` is exercised end to end."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from vllm_pin.cli import main
from vllm_pin.in_env import inspect_env
from vllm_pin.verify.env import inspect_interpreter
from vllm_pin.verify.imports import run_import_check

MATRIX = Path(__file__).parent / "fixtures" / "verify" / "matrix"


def elf_with_needed(*needed: str) -> bytes:
    """A minimal 64-bit little-endian ELF shared object whose dynamic section lists ``needed``.

    Layout: ELF header, two program headers (PT_LOAD over the whole file, PT_DYNAMIC), the
    dynamic entries, then the string table; addresses equal file offsets.
    """
    strtab = b"\0" + b"".join(n.encode() + b"\0" for n in needed)
    offsets, pos = [], 1
    for n in needed:
        offsets.append(pos)
        pos += len(n) + 1
    phoff, phnum = 64, 2
    dyn_off = phoff + 56 * phnum
    entries = [(1, off) for off in offsets]
    dyn_size = 16 * (len(entries) + 3)
    str_off = dyn_off + dyn_size
    entries += [(5, str_off), (10, len(strtab)), (0, 0)]
    total = str_off + len(strtab)
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header += struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, phoff, 0, 0, 64, 56, phnum, 64, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 4, 0, 0, 0, total, total, 0x1000)
    dynamic = struct.pack("<IIQQQQQQ", 2, 4, dyn_off, dyn_off, dyn_off, dyn_size, dyn_size, 8)
    body = b"".join(struct.pack("<qQ", tag, val) for tag, val in entries)
    return header + load + dynamic + body + strtab


def make_dist(
    site: Path,
    name: str,
    version: str,
    *,
    requires: tuple[str, ...] = (),
    requires_python: str | None = None,
    tags: tuple[str, ...] = ("py3-none-any",),
    files: dict[str, bytes] | None = None,
) -> None:
    """Write a dist-info folder (METADATA, WHEEL, RECORD) and the files it lists."""
    files = files or {}
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    if requires_python:
        meta.append(f"Requires-Python: {requires_python}")
    (info / "METADATA").write_text("\n".join(meta) + "\n", encoding="utf-8")
    wheel = ["Wheel-Version: 1.0", "Root-Is-Purelib: false", *(f"Tag: {t}" for t in tags)]
    (info / "WHEEL").write_text("\n".join(wheel) + "\n", encoding="utf-8")
    for rel, data in files.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    record = [f"{rel},," for rel in files] + [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")


@pytest.fixture
def bare_venv(tmp_path: Path) -> tuple[Path, Path]:
    """A real venv without pip: (its python, its site-packages)."""
    root = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(root)
    python = root / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return python, Path(site)


def test_elf_needed_reads_dynamic_section(tmp_path: Path) -> None:
    so = tmp_path / "_C.so"
    so.write_bytes(elf_with_needed("libc10_cuda.so", "libc.so.6"))
    assert inspect_env.elf_needed(str(so)) == ["libc10_cuda.so", "libc.so.6"]
    (tmp_path / "x.so").write_bytes(b"not an elf")
    assert inspect_env.elf_needed(str(tmp_path / "x.so")) is None


def test_elf_needed_on_a_real_library() -> None:
    libs = sorted(Path(sys.base_prefix).glob("lib/python3*/lib-dynload/_ssl*.so"))
    if not libs:
        pytest.skip("no _ssl extension module to read")
    needed = inspect_env.elf_needed(str(libs[0]))
    assert needed is not None and any(n.startswith("libssl") for n in needed)


def test_inspect_fake_site(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_dist(
        site,
        "torch",
        "2.7.1+cpu",
        files={"torch/version.py": b"cuda: Optional[str] = None\n"},
        tags=("cp311-cp311-manylinux_2_28_x86_64",),
    )
    make_dist(
        site,
        "torchvision",
        "0.22.1",
        requires=("torch (==2.7.1)",),
        files={
            "torchvision/_C.so": elf_with_needed("libc10_cuda.so", "libc10.so"),
            "torchvision.libs/libcudart.so.12": elf_with_needed("libc.so.6"),
        },
    )
    make_dist(site, "vllm", "0.10.1.1", files={"vllm/envs.py": b"environment_variables = {}\n"})
    other = tmp_path / "other"
    make_dist(other, "torch", "2.2.0")
    data = inspect_env.inspect([str(site), str(other)])
    dists = data["distributions"]
    assert dists["torch"]["version"] == "2.7.1+cpu"
    assert dists["torch"]["shadowed_versions"] == ["2.2.0"]
    assert dists["torch"]["wheel_tags"] == ["cp311-cp311-manylinux_2_28_x86_64"]
    assert data["torch_cuda"] == ""
    assert dists["torchvision"]["requires_dist"] == ["torch (==2.7.1)"]
    assert dists["torchvision"]["has_native"] is True
    assert dists["torchvision"]["cuda_links"] == ["libc10_cuda.so"]  # .libs/ copies skipped
    assert data["vllm_site"] == str(site)
    json.dumps(data)  # JSON-ready


@pytest.mark.parametrize(
    ("text", "cuda"),
    [
        ("cuda: Optional[str] = '12.6'\n", "12.6"),
        ('cuda = "11.8"\n', "11.8"),
        ("cuda: Optional[str] = None\n", ""),
        ("hip = None\n", None),
    ],
)
def test_torch_cuda_from_version_py(tmp_path: Path, text: str, cuda: str | None) -> None:
    path = tmp_path / "version.py"
    path.write_text(text, encoding="utf-8")
    assert inspect_env.torch_cuda_from_version_py(str(path)) == cuda


def test_marker_environment_matches_packaging() -> None:
    from packaging.markers import default_environment

    assert inspect_env.marker_environment() == dict(default_environment())


def test_python_option_inspects_another_interpreter(
    bare_venv: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    python, site = bare_venv
    make_dist(site, "vllm", "0.10.1.1", requires=("torch==2.7.1",), requires_python=">=3.9")
    make_dist(site, "torch", "2.2.0", files={"torch/version.py": b"cuda = '12.1'\n"})
    env = inspect_interpreter(str(python))
    assert env.executable == str(python)
    assert env.torch_cuda == "12.1"
    assert str(env.dists["torch"].version) == "2.2.0"
    rc = main(["verify", "--matrix", str(MATRIX), "--python", str(python), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert report["problems"][0]["code"] == "VP101"
    assert f"uv pip install --python {python} 'torch==2.7.1'" in report["problems"][0]["fix"]


def test_python_option_bad_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc = main(["verify", "--python", str(tmp_path / "nope" / "python")])
    assert rc == 2
    assert "no such interpreter" in capsys.readouterr().err


def test_current_interpreter_without_vllm_is_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["verify", "--matrix", str(MATRIX)])
    out = capsys.readouterr()
    assert (rc, out.out) == (0, "")


# -- imports ------------------------------------------------------------------------------

FAKE_TORCH_220 = {
    # torch 2.2.0's shape: `torch._inductor` is a submodule reachable after `import torch`,
    # but its `config` is only bound once something imports torch._inductor.config.
    "torch/__init__.py": b"from . import _inductor\ntensor = list\n",
    "torch/_inductor/__init__.py": b"",
    "torch/_inductor/config.py": b"compile_threads = 8\n",
    "torchvision/__init__.py": b"from . import ops\n",
    "torchvision/ops.py": (
        b"def nms(boxes, scores, iou):\n"
        b"    raise RuntimeError('operator torchvision::nms does not exist')\n"
    ),
    "torchaudio/__init__.py": b"import time\ntime.sleep(30)\n",
}


@pytest.fixture
def fake_torch_site(bare_venv: tuple[Path, Path]) -> tuple[Path, Path]:
    python, site = bare_venv
    for rel, data in FAKE_TORCH_220.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return python, site


def test_inductor_check_reproduces_vllm_access(fake_torch_site: tuple[Path, Path]) -> None:
    python, _ = fake_torch_site
    explicit = subprocess.run(
        [str(python), "-c", "import torch._inductor.config"], capture_output=True, check=False
    )
    assert explicit.returncode == 0  # the seed's one-line check passes on the broken env...
    result = run_import_check(str(python), "torch._inductor.config", timeout=60)
    assert result["ok"] is False  # ...the access vLLM makes does not
    assert result["error"] == "AttributeError: module 'torch._inductor' has no attribute 'config'"
    assert run_import_check(str(python), "torch", timeout=60)["ok"] is True


def test_torchvision_ops_check(fake_torch_site: tuple[Path, Path]) -> None:
    python, _ = fake_torch_site
    result = run_import_check(str(python), "torchvision.ops", timeout=60)
    assert result["error"] == "RuntimeError: operator torchvision::nms does not exist"


def test_import_check_timeout(fake_torch_site: tuple[Path, Path]) -> None:
    python, _ = fake_torch_site
    result = run_import_check(str(python), "torchaudio", timeout=1)
    assert result == {
        "check": "torchaudio",
        "code": "import torchaudio",
        "ok": False,
        "error": "timed out after 1 s",
    }


def test_import_check_missing_module(bare_venv: tuple[Path, Path]) -> None:
    python, _ = bare_venv
    result = run_import_check(str(python), "vllm", timeout=60)
    assert result["error"] == "ModuleNotFoundError: No module named 'vllm'"


@pytest.mark.parametrize(
    ("cuda_vision", "vllm_requires", "expected"),
    [
        (True, ("torch==2.7.1",), "mixed"),
        (False, ("torch==2.7.1",), "pins"),
        (False, ("numpy",), "generic"),
    ],
    ids=["cuda-torchvision", "cpu-torchvision", "no-torch-pin"],
)
def test_imports_option_explains_failures(
    fake_torch_site: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    cuda_vision: bool,
    vllm_requires: tuple[str, ...],
    expected: str,
) -> None:
    """`--imports` end to end: a failed import says why, from what the static checks found."""
    python, site = fake_torch_site
    make_dist(site, "torch", "2.2.0", files={"torch/version.py": b"cuda = None\n"})
    native = {"torchvision/_C.so": elf_with_needed("libc10_cuda.so")} if cuda_vision else {}
    make_dist(site, "torchvision", "0.17.0", files=native)
    make_dist(site, "vllm", "0.10.1.1", requires=vllm_requires)
    rc = main(["verify", "--matrix", str(MATRIX), "--python", str(python), "--imports", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 1
    pins = f"uv pip install --python {python} 'torch==2.7.1'"
    rerun = "fix the problems reported above, then run verify --imports again"
    fix = rerun if expected == "generic" else pins
    other = {
        "mixed": (
            "CPU and CUDA builds are mixed (VP301 torchvision 0.17.0)",
            "apply the fixes of VP301 torchvision 0.17.0 above",
        ),
        "pins": ("vLLM cannot start until this import works", pins),
        "generic": ("vLLM cannot start until this import works", rerun),
    }[expected]
    found = {
        p["subject"]: (p["what"], p["why"], p["fix"])
        for p in report["problems"]
        if p["code"] == "VP701"
    }
    assert found == {
        "`import torch; torch._inductor.config`": (
            "fails: AttributeError: module 'torch._inductor' has no attribute 'config'",
            "vLLM does `import torch` then `torch._inductor.config.compile_threads = 1`; "
            "torch 2.2.0 does not expose that attribute after a plain import",
            fix,
        ),
        "`torchvision.ops.nms on a 1-box tensor`": (
            "fails: RuntimeError: operator torchvision::nms does not exist",
            *other,
        ),
        "`from vllm import LLM`": ("fails: ModuleNotFoundError: No module named 'vllm'", *other),
    }


def _version_py(version: str, cuda: str | None = None) -> bytes:
    """A version.py as the PyTorch builds write it: the full build version, and for torch
    the CUDA it was built for."""
    text = f"__version__ = '{version}'\ngit_version = 'abc'\n"
    if cuda is not None:
        text += f"cuda: Optional[str] = {cuda!r}\n" if cuda else "cuda: Optional[str] = None\n"
    return text.encode()


#: name -> (metadata version, files): PyPI builds say 0.22.1 in METADATA, +cu126 in version.py
EXTENSIONS: dict[str, tuple[str, dict[str, bytes]]] = {
    "tv-pypi-cu126": ("0.22.1", {"torchvision/version.py": _version_py("0.22.1+cu126")}),
    "tv-cu118": ("0.22.1+cu118", {"torchvision/version.py": _version_py("0.22.1+cu118")}),
    "tv-cpu": ("0.22.1", {"torchvision/version.py": _version_py("0.22.1+cpu")}),
    "ta-2.11": ("2.11.0", {"torchaudio/version.py": _version_py("2.11.0+cu128")}),
    "vllm-cu128": (
        "0.10.1.1",
        {"vllm/_version.py": b"__version__ = version = '0.10.1.1+cu128'\n"},
    ),
    "xf-cpp-lib": (
        "0.0.31",
        {
            "xformers/version.py": _version_py("0.0.31"),
            "xformers/cpp_lib.json": json.dumps({"version": {"torch": "2.7.1+cu126"}}).encode(),
        },
    ),
}


@pytest.mark.parametrize(
    ("torch", "extension", "code", "expected"),
    [
        pytest.param(
            ("2.7.1+cu118", "11.8"),
            "tv-pypi-cu126",
            "VP303",
            [
                "VP303 torchvision 0.22.1: built for CUDA 12.6, torch 2.7.1+cu118 for CUDA 11.8; "
                "read from torchvision/version.py __version__ = '0.22.1+cu126'",
                "'torchvision==0.22.1+cu118' --extra-index-url https://download.pytorch.org/whl/cu118",
            ],
            id="issue 11: PyPI torchvision beside a cu118 torch",
        ),
        pytest.param(("2.7.1+cu118", "11.8"), "tv-cu118", None, [], id="matching builds"),
        pytest.param(
            ("2.7.1", "12.6"),
            "tv-cpu",
            "VP302",
            ["VP302 torchvision 0.22.1: a CPU build of torchvision beside the CUDA torch 2.7.1"],
            id="CPU torchvision (read from version.py) beside a CUDA torch",
        ),
        pytest.param(
            ("2.7.1+cu118", "11.8"),
            "xf-cpp-lib",
            "VP303",
            ["built for CUDA 12.6", "read from xformers/cpp_lib.json", "whl/cu118"],
            id="xformers build from cpp_lib.json",
        ),
        pytest.param(
            ("2.7.1+cu126", "12.6"),
            "vllm-cu128",
            "VP303",
            [
                "VP303 vllm 0.10.1.1: built for CUDA 12.8, torch 2.7.1+cu126 for CUDA 12.6; "
                "read from vllm/_version.py __version__ = '0.10.1.1+cu128'",
                "'torch==2.7.1+cu128' --extra-index-url https://download.pytorch.org/whl/cu128",
            ],
            id="a vllm built for another CUDA than torch",
        ),
        pytest.param(
            ("2.13.0", "13.0"),
            "ta-2.11",
            None,
            [],
            id="torchaudio 2.11 (stable ABI) beside torch 2.13",
        ),
    ],
)
def test_cuda_build_mix_in_an_installed_env(
    bare_venv: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    torch: tuple[str, str],
    extension: str,
    code: str | None,
    expected: list[str],
) -> None:
    """A real venv of hand-made dist-info folders and version files, inspected by the real
    inspect_env run with that venv's interpreter (`--python`)."""
    python, site = bare_venv
    version, cuda = torch
    make_dist(site, "torch", version, files={"torch/version.py": _version_py(version, cuda)})
    ext_version, files = EXTENSIONS[extension]
    name = next(iter(files)).split("/")[0]
    make_dist(site, name, ext_version, files=files)
    rc = main(["verify", "--matrix", str(MATRIX), "--python", str(python), "--json"])
    report = json.loads(capsys.readouterr().out)
    codes = [p["code"] for p in report["problems"]]
    assert codes == ([code] if code else []), codes
    assert rc == (1 if code else 0)
    for part in expected:
        assert part in report["problems"][0]["line"]


@pytest.mark.parametrize(
    ("payload", "cuda"),
    [
        ({"version": {"torch": "2.7.1+cu126", "cuda": 11080}}, "12.6"),
        ({"version": {"cuda": 12080}}, "12.8"),
        ({"version": {"cuda": "12.4"}}, "12.4"),
        ({"version": {"torch": "2.7.1+cpu", "cuda": None}}, ""),
        ({"version": {"cuda": 0}}, None),
        ({"env": {}}, None),
    ],
)
def test_xformers_cpp_lib_json(
    tmp_path: Path, payload: dict[str, object], cuda: str | None
) -> None:
    site = tmp_path / "site"
    files = {"xformers/cpp_lib.json": json.dumps(payload).encode()}
    make_dist(site, "xformers", "0.0.31", files=files)
    data = inspect_env.inspect([str(site)])
    build = data["distributions"]["xformers"]["cuda_build"]
    assert (build["cuda"] if build else None) == cuda
