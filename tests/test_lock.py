"""Hashed locks through the real uv, offline: tiny wheels in a --find-links directory."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from vllm_pin.index.settings import NO_INDEX, IndexConfig
from vllm_pin.pin.lock import LockError, Target, check_together, compile_lock, find_uv

TARGET = Target("3.12", "x86_64-manylinux_2_28")


def make_wheel(directory: Path, name: str, version: str, requires: Sequence[str] = ()) -> Path:
    """A minimal valid pure-Python wheel whose METADATA declares ``requires``."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = directory / f"{dist}-py3-none-any.whl"
    metadata = "\n".join(
        ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        + [f"Requires-Dist: {r}" for r in requires]
    )
    files = {
        f"{dist}.dist-info/METADATA": metadata + "\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = [f"{n},," for n in files] + [f"{dist}.dist-info/RECORD,,"]
    with zipfile.ZipFile(path, "w") as zf:
        for member, text in files.items():
            zf.writestr(member, text)
        zf.writestr(f"{dist}.dist-info/RECORD", "\n".join(record) + "\n")
    return path


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    directory = tmp_path / "wheels"
    directory.mkdir()
    make_wheel(directory, "vllm", "0.1.0", ["torch==2.0.0", "filelock"])
    make_wheel(directory, "torch", "2.0.0", ["filelock>=3"])
    make_wheel(directory, "torch", "2.1.0")
    make_wheel(directory, "filelock", "3.0.0")
    return directory


def local(wheels: Path) -> IndexConfig:
    return IndexConfig(index_url=NO_INDEX, find_links=(str(wheels),))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pip_install(lock: Path, target: Path) -> subprocess.CompletedProcess[str]:
    """`pip install --require-hashes` of a lock, ignoring this machine's pip config."""
    command = [sys.executable, "-m", "pip", "install", "--require-hashes", "--no-deps", "-q"]
    return subprocess.run(
        [*command, "--isolated", "--target", str(target), "-r", str(lock)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_lock_is_transitive_and_hashed(wheels: Path) -> None:
    body = compile_lock("vllm==0.1.0\n", TARGET, local(wheels))
    for name, version in (("vllm", "0.1.0"), ("torch", "2.0.0"), ("filelock", "3.0.0")):
        wheel = next(wheels.glob(f"{name}-{version}-*.whl"))
        assert f"{name}=={version} \\\n    --hash=sha256:{sha(wheel)}" in body
    assert "torch==2.1.0" not in body
    assert "requirements-vllm.txt" in body  # uv's "# via -r <tmpfile>" names the real input
    assert "/tmp" not in body


def test_override_drops_a_declared_dependency(wheels: Path) -> None:
    body = compile_lock(
        "vllm==0.1.0\n", TARGET, local(wheels), overrides=['torch; sys_platform == "never"']
    )
    assert "vllm==0.1.0" in body and "torch==" not in body


def test_lock_installs_with_pip_require_hashes_and_uv_sync(wheels: Path, tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(
        "\n".join(local(wheels).lines())
        + "\n"
        + compile_lock("vllm==0.1.0\n", TARGET, local(wheels))
    )
    target = tmp_path / "site"
    pip = pip_install(lock, target)
    assert pip.returncode == 0, pip.stderr
    assert sorted(p.name for p in target.glob("*.dist-info")) == [
        "filelock-3.0.0.dist-info",
        "torch-2.0.0.dist-info",
        "vllm-0.1.0.dist-info",
    ]
    uv = find_uv()
    venv = tmp_path / "venv"
    subprocess.run([*uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    sync = subprocess.run(
        [*uv, "pip", "sync", "-q", "--python", str(venv / "bin" / "python"), str(lock)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert sync.returncode == 0, sync.stderr
    assert list((venv / "lib").glob("python3*/site-packages/vllm-0.1.0.dist-info"))


def test_a_hash_mismatch_is_refused_by_pip(wheels: Path, tmp_path: Path) -> None:
    """The lock is what protects the install: a different file with the same name fails."""
    body = compile_lock("vllm==0.1.0\n", TARGET, local(wheels))
    lock = tmp_path / "requirements.lock"
    lock.write_text("\n".join(local(wheels).lines()) + "\n" + body)
    make_wheel(wheels, "filelock", "3.0.0", ["six"])  # same name, other bytes
    pip = pip_install(lock, tmp_path / "site")
    assert pip.returncode != 0
    assert "DO NOT MATCH" in pip.stderr


def test_unsatisfiable_reason_and_satisfiable_none(wheels: Path) -> None:
    reason = check_together(["torch<2", "torch>=2.0.0"], TARGET, local(wheels))
    assert reason is not None and "torch" in reason and "\n" not in reason
    assert check_together(["torch>=2", "torch<2.1"], TARGET, local(wheels)) is None


def test_network_failure_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    monkeypatch.setenv("UV_NO_CACHE", "1")
    dead = IndexConfig(index_url="http://127.0.0.1:9/simple")
    with pytest.raises(LockError) as err:
        compile_lock("vllm==0.1.0\n", TARGET, dead, timeout=120)
    assert "\n" not in str(err.value)
    assert "could not reach a package index" in str(err.value)


def test_find_links_wheels_survive_exclude_newer(wheels: Path) -> None:
    """Local wheels have no upload time: uv keeps them under any cutoff (the cpu envs'
    torch +cpu comes from such a directory while PyPI packages are cut off)."""
    body = compile_lock(
        "vllm==0.1.0\n", TARGET, local(wheels), exclude_newer="2000-01-01T00:00:00Z"
    )
    assert "vllm==0.1.0" in body and "torch==2.0.0" in body


@pytest.mark.network
@pytest.mark.parametrize(
    ("cutoff", "version"), [("2019-06-01T00:00:00Z", "19.0"), ("2021-01-01T00:00:00Z", "20.8")]
)
def test_exclude_newer_hides_later_uploads(cutoff: str, version: str) -> None:
    """On a real index the newest release uploaded before the cutoff wins."""
    body = compile_lock("packaging\n", TARGET, IndexConfig(), exclude_newer=cutoff, timeout=120)
    assert f"packaging=={version} \\" in body


def test_find_uv_runs() -> None:
    out = subprocess.run([*find_uv(), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("uv ")
