"""`verify -r` on requirement sets as projects write them: ranges, bare names, pyproject extras
and groups, uv.lock, pylock.toml; judged over every release of the checkout's matrix.

The corpus (tests/fixtures/verify_corpus/, README there) records what real `uv pip compile`
resolved for 28 cut-down real-world sets; verify must agree with it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from vllm_pin.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from test_knowledge import SAMPLER_WARNING, WITHOUT_SAMPLER_CASES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.9/3.10 only
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "matrix"
CORPUS = Path(__file__).parent / "fixtures" / "verify_corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "case.toml").is_file())

#: cases where uv's answer turns on something verify does not judge (it judges the torch family)
NOT_TORCH_FAMILY = {
    # uv fails only because the legacy name `flashinfer` is not on the registry; the torch
    # family of vllm<=0.8.5 beside torch>2.1.0 fits, and verify says so
    "verl-vllm-flashinfer-cap": (0, ""),
    # uv resolves only through [tool.uv] override-dependencies = ["ray==2.44.0"], which it
    # reads from the pyproject in the working directory; verify judges the set as declared
    # and reports vllm 0.8.5's own `ray[cgraph]!=2.44.*` (uv --no-config fails the same way)
    "skyrl-train-vllm085-flashinfer": (1, "VP101 ray 2.44.0: vllm 0.8.5 requires ray[cgraph]"),
}


@pytest.fixture(autouse=True)
def _no_vllm_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("VLLM_")]:
        monkeypatch.delenv(name)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["verify", "--matrix", str(MATRIX), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def case_args(case: dict[str, Any], folder: Path) -> list[str]:
    args = ["-r", str(folder / case["file"]), "--python-version", case["python"]]
    args += ["--machine", "x86_64"]
    if case["file"] in ("uv.lock", "pylock.toml"):
        return args  # a lock holds every extra and group it was made with
    for extra in case["extras"]:
        args += ["--extra", extra]
    for group in case["groups"]:
        args += ["--group", group]
    return args


@pytest.mark.parametrize("name", CASES)
def test_corpus_agrees_with_uv(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = CORPUS / name
    case = tomllib.loads((folder / "case.toml").read_text(encoding="utf-8"))
    code, out, err = run([*case_args(case, folder), "--json"], capsys)
    report = json.loads(out)
    lines = [p["line"] for p in report["problems"]]
    if name in NOT_TORCH_FAMILY:
        want_code, want_line = NOT_TORCH_FAMILY[name]
        assert code == want_code, lines
        assert all(want_line in line for line in lines)
        return
    if case["uv_resolves"]:
        assert code == 0, lines
        fits = {v for s in report.get("sets", []) for v in s["fits"]}
        # uv's pick is one valid answer: a range-judged set must count it among what fits;
        # an exact set is checked release by release (and pins uv's pick)
        resolved = case["uv_resolved"]["vllm"]
        assert not report.get("sets") or resolved in fits, report["sets"]
        return
    assert code == 1
    # the clash uv names (the torch family pin it gave up on) is the one verify reports
    first_cause = case["uv_error"].split("depends on ")[1].split(" and")[0]
    package, _, version = first_cause.partition("==")
    assert any(package in line and version in line for line in lines), (first_cause, lines)
    assert err == ""


@pytest.mark.parametrize(
    ("files", "args", "code", "expected"),
    [
        pytest.param(
            {"r.txt": "vllm>=0.10,<0.11\ntorch\n"},
            ["--explain"],
            0,
            ["r.txt: admits vllm 0.10.0-0.10.2; fits: 0.10.0-0.10.2"],
            id="range with bare torch fits",
        ),
        pytest.param(
            {"r.txt": "vllm==0.10.1.1\ntorch\ntorchvision\n"},
            [],
            0,
            [],
            id="exact vllm beside bare names",
        ),
        pytest.param(
            {"r.txt": "vllm~=0.9.0\ntorch<2.7\n"},
            [],
            1,
            ["VP106 vllm~=0.9.0: 0.9.0-0.9.2 need torch==2.7.0; the set says torch<2.7"],
            id="range clash names releases and pins",
        ),
        pytest.param(
            {"r.txt": "vllm>=0.10.1\ntorch==2.7.1\n"},
            ["--explain"],
            0,
            ["admits vllm 0.10.1-0.33.0", "fits: 0.10.1-0.10.1.1"],
            id="newest admitted does not fit: warning, exit 0",
        ),
        pytest.param(
            {"r.txt": "vllm>=99\n"},
            [],
            1,
            ["VP107 vllm>=99: no vllm release in the matrix satisfies it"],
            id="nothing admitted",
        ),
        pytest.param(
            {"r.txt": "vllm<=0.5.0\ntorchvision==0.21.0\n"},
            ["--vllm", "0.5.0"],
            1,
            ["0.5.0 needs torch==2.3.0; the set says torchvision==0.21.0, which needs torch==2.6"],
            id="--vllm; an extension the release leaves free needs another torch",
        ),
        pytest.param(
            {"r.txt": "vllm>=0.10,<0.11\ntorch>=2.7\n"},
            ["--vllm", "0.11.0"],
            1,
            ["VP104 vllm<0.11,>=0.10: ", "says vllm<0.11,>=0.10, but --vllm selects 0.11.0"],
            id="--vllm outside the set's range",
        ),
        pytest.param(
            {"r.txt": "vllm==0.11.0\nflashinfer-python==0.5.2\ntorch==2.8.0\n"},
            [],
            0,
            [],
            id="a pin behind vllm's own extra does not apply unasked",
        ),
        pytest.param(
            {"r.txt": "vllm[flashinfer]==0.11.0\nflashinfer-python==0.5.2\ntorch==2.8.0\n"},
            [],
            1,
            ["VP101 flashinfer-python 0.5.2: vllm 0.11.0 requires flashinfer-python==0.3.1"],
            id="the same pin applies when vllm[flashinfer] is asked",
        ),
        pytest.param(
            {"r.txt": "vllm[flashinfer]>=0.11,<0.11.1\nflashinfer-python>=0.5\n"},
            [],
            1,
            ["VP106", "needs flashinfer-python==0.3.1; the set says flashinfer-python>=0.5"],
            id="range set asking vllm[flashinfer]",
        ),
        pytest.param(
            {"r.txt": "vllm==0.27.1\ntorch==2.13.0\ntorchaudio==2.11.0\ntorchvision==0.28.0\n"},
            [],
            0,
            [],
            id="torchaudio 2.11 declares no torch pin (stable ABI)",
        ),
        pytest.param(
            {"r.txt": "vllm>=0.27\ntorch==2.13.0\ntorchaudio==2.11.0\n"},
            ["--explain"],
            0,
            ["fits: 0.27.0-0.32.0"],
            id="torchaudio 2.11 beside torch 2.13 in a range",
        ),
        pytest.param(
            {"r.txt": "-r base.txt\n-c pins.txt\nvllm>=0.9\n", "base.txt": "transformers\n"}
            | {"pins.txt": "torch==2.7.0\n"},
            ["--explain"],
            0,
            ["fits: 0.9.0-0.9.2"],
            id="-r and -c includes",
        ),
        pytest.param(
            {
                "pyproject.toml": '[project]\nname = "p"\nversion = "0"\n'
                'dependencies = ["torch<2.7"]\n'
                "[project.optional-dependencies]\n"
                'vllm = ["vllm>=0.9,<0.10"]\nold = ["vllm==0.8.5"]\nother = ["numpy"]\n'
            },
            [],
            1,
            ["VP106 vllm<0.10,>=0.9: 0.9.0-0.9.2 need torch==2.7.0; the set says torch<2.7"],
            id="pyproject: each extra that mentions vllm on its own",
        ),
        pytest.param(
            {
                "pyproject.toml": '[project]\nname = "p"\nversion = "0"\n'
                'dependencies = ["torch==2.7.1"]\n'
                '[project.optional-dependencies]\nvllm = ["vllm>=0.10"]\nall = ["p[vllm]"]\n'
                '[dependency-groups]\nci = [{include-group = "base"}]\nbase = ["torchvision"]\n'
            },
            ["--extra", "all", "--group", "ci", "--explain"],
            0,
            ["pyproject.toml [all, group ci]: admits vllm 0.10.0-0.33.0; fits: 0.10.0-0.10.1.1"],
            id="pyproject: --extra through a self-reference, --group with include-group",
        ),
    ],
)
def test_input_forms(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str],
    args: list[str],
    code: int,
    expected: list[str],
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    entry = next(iter(files))
    rc, out, err = run(["-r", str(tmp_path / entry), "--python-version", "3.11", *args], capsys)
    assert rc == code, out + err
    for part in expected:
        assert part in out
    if code == 0 and "--explain" not in args:
        assert out == ""


def test_warning_when_the_newest_admitted_release_does_not_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    req = tmp_path / "r.txt"
    req.write_text("vllm>=0.10.1\ntorch==2.7.1\n", encoding="utf-8")
    rc, out, err = run(["-r", str(req), "--python-version", "3.11"], capsys)
    assert (rc, out) == (0, "")
    assert err.startswith("warning: ")
    assert "newest admitted release, vllm 0.33.0, needs torch==2.14.0" in err
    assert "the set says torch==2.7.1; a resolver may pick an older one" in err
    rc, out, _ = run(["-r", str(req), "--python-version", "3.11", "--format", "github"], capsys)
    assert rc == 0 and out.startswith("::warning title=vllm-pin::")


def test_json_says_what_is_admitted_and_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    req = tmp_path / "r.txt"
    req.write_text("vllm>=0.10.1,<0.11\n", encoding="utf-8")
    rc, out, _ = run(["-r", str(req), "--python-version", "3.11", "--json"], capsys)
    report = json.loads(out)
    assert rc == 0 and report["ok"]
    assert report["sets"][0]["admitted"] == ["0.10.1", "0.10.1.1", "0.10.2"]
    assert report["sets"][0]["fits"] == ["0.10.1", "0.10.1.1", "0.10.2"]


def test_python_version_limits_what_is_admitted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    req = tmp_path / "r.txt"
    req.write_text("vllm>=0.10,<0.10.2\n", encoding="utf-8")
    _, out_311, _ = run(["-r", str(req), "--python-version", "3.11", "--json"], capsys)
    rc, out_313, _ = run(["-r", str(req), "--python-version", "3.13", "--json"], capsys)
    assert json.loads(out_311)["sets"][0]["admitted"] == ["0.10.0", "0.10.1", "0.10.1.1"]
    assert rc == 1
    assert json.loads(out_313)["problems"][0]["code"] == "VP107"


LOCK_CASES = [
    pytest.param("open-instruct-uv-lock", "uv.lock", "3.12", id="uv.lock"),
    pytest.param("roll-pylock", "pylock.toml", "3.10", id="pylock.toml"),
]


@pytest.mark.parametrize(("case", "name", "python"), LOCK_CASES)
def test_lock_files_are_exact_sets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, name: str, python: str
) -> None:
    text = (CORPUS / case / name).read_text(encoding="utf-8")
    (tmp_path / name).write_text(text, encoding="utf-8")
    rc, out, _ = run(["-r", str(tmp_path / name), "--python-version", python], capsys)
    assert (rc, out) == (0, "")
    bumped = text.replace('name = "torch"\nversion = "2.', 'name = "torch"\nversion = "1.', 1)
    assert bumped != text
    (tmp_path / name).write_text(bumped, encoding="utf-8")
    rc, out, _ = run(["-r", str(tmp_path / name), "--python-version", python], capsys)
    assert rc == 1
    assert out.startswith("VP101 torch 1.")


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        pytest.param(
            {"a.txt": "-r b.txt\nvllm\n", "b.txt": "-c a.txt\n"},
            [],
            "include cycle a.txt -> b.txt -> a.txt",
            id="include cycle",
        ),
        pytest.param({"a.txt": "-r a.txt\n"}, [], "include cycle a.txt -> a.txt", id="self"),
        pytest.param(
            {"a.txt": "-r gone.txt\n"},
            [],
            "gone.txt: cannot read it (No such file or directory)",
            id="missing include",
        ),
        pytest.param(
            {"pyproject.toml": "[project\nname = 'x'\n"},
            [],
            "pyproject.toml: not valid TOML (",
            id="bad TOML",
        ),
        pytest.param({"uv.lock": "version = 1\n[[package\n"}, [], "not valid TOML", id="bad lock"),
        pytest.param(
            {"pyproject.toml": "[build-system]\nrequires = []\n"},
            [],
            "no [project] or [dependency-groups] table",
            id="pyproject without a project",
        ),
        pytest.param(
            {"pyproject.toml": '[project]\nname = "p"\n[project.optional-dependencies]\nx = []\n'},
            ["--extra", "gpu"],
            "has no extra 'gpu' (extras: x)",
            id="unknown extra",
        ),
        pytest.param(
            {"pyproject.toml": '[project]\nname = "p"\n'},
            ["--group", "dev"],
            "has no dependency group 'dev' (groups: none)",
            id="unknown group",
        ),
        pytest.param(
            {"pyproject.toml": '[dependency-groups]\na = [{include-group = "a"}]\n'},
            ["--group", "a"],
            "dependency group cycle a -> a",
            id="group cycle",
        ),
        pytest.param(
            {"r.txt": "vllm\n"}, ["--extra", "x"], "select from a pyproject.toml", id="extra on txt"
        ),
        pytest.param(
            {"pyproject.toml": '[project]\nname = "p"\ndependencies = ["vllm >= = 1"]\n'},
            [],
            "is not a requirement",
            id="bad requirement in pyproject",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str],
    args: list[str],
    message: str,
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    entry = next(iter(files))
    rc, out, err = run(["-r", str(tmp_path / entry), *args], capsys)
    assert (rc, out) == (2, "")
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    req = tmp_path / "r.txt"
    req.write_bytes(b"\xff\xfe vllm\n")
    rc, out, err = run(["-r", str(req)], capsys)
    assert (rc, out) == (2, "")
    assert "not UTF-8 text" in err and len(err.strip().splitlines()) == 1
    folder = tmp_path / "dir.txt"
    folder.mkdir()
    rc, _, err = run(["-r", str(folder)], capsys)
    assert rc == 2 and "cannot read it" in err and len(err.strip().splitlines()) == 1


def test_extra_without_requirements_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(["--extra", "vllm"], capsys)
    assert (rc, out) == (2, "")
    assert "use them with -r FILE" in err


def test_a_set_without_vllm_is_judged_over_every_release(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """vllm may come through another package (`lm_eval[vllm]`): the torch pins still tell
    which releases can work."""
    req = tmp_path / "r.txt"
    req.write_text("lm_eval[vllm]==0.4.9.1\ntorch==2.6.0\n", encoding="utf-8")
    rc, out, err = run(["-r", str(req), "--python-version", "3.11", "--explain", "-v"], capsys)
    assert rc == 0
    assert "fits: " in out and "0.8.0-0.8.5.post1" in out
    assert "names no vllm; judged over every release" in err
    assert "ok: a fitting vLLM release for each set in" in err


@pytest.mark.parametrize(("version", "variant", "warns"), WITHOUT_SAMPLER_CASES)
def test_without_a_distribution_engine_starts_need_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: str, variant: str, warns: bool
) -> None:
    """verify --without flashinfer-python: the same findings, plus one stderr line where a
    CUDA engine start imports it (curated config fact)."""
    req = tmp_path / "req.txt"
    pin_args = ["pin", "--matrix", str(MATRIX), "--vllm", version, "--variant", variant]
    assert main([*pin_args, "-o", str(req)]) == 0
    capsys.readouterr()
    args = ["-r", str(req), "--python-version", "3.12", "--machine", "x86_64"]
    plain = run(args, capsys)
    code, out, err = run([*args, "--without", "flashinfer-python"], capsys)
    assert (code, out) == plain[:2]
    warning = [SAMPLER_WARNING.format(v=version)] * warns
    assert err.splitlines() == warning + plain[2].splitlines()
