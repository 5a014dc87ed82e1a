"""`vllm-pin matrix` and `vllm-pin show` against the loader's fixture matrix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vllm_pin.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "matrix"


@pytest.fixture(autouse=True)
def fixture_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_PIN_MATRIX_DIR", str(FIXTURE))


def test_matrix_table_marks_marker_pins_and_yanked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "0.0.31*" in lines["0.10.1.1"]  # xformers only under its Linux x86_64 marker
    assert "2.7.1" in lines["0.10.1.1"]
    assert lines["0.2.1"].endswith("yanked")
    assert lines["0.0.1"].endswith("sdist only")


def test_matrix_json_since_filters_with_version_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--json", "--since", "0.10.1"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["version"] for r in rows] == ["0.10.1.1", "0.10.2", "0.11.0rc1"]
    assert rows[1]["machines"] == ["aarch64", "x86_64"]


def test_matrix_bad_since_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--since", "ten"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a version" in err


def test_show_json_has_provenance(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "0.10", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == "0.10.1.1"
    assert "series 0.10 default" in info["picked_by"]
    torch = next(p for p in info["pins"] if p["requirement"] == "torch==2.7.1")
    assert "pep658 metadata of vllm-0.10.1.1" in torch["source"]
    assert torch["cuda"] == "12.6"
    assert torch["min_driver"]["value"] == "525.60.13"
    assert info["anomalies"] == ["a made-up anomaly for the loader test"]


def test_show_text_and_unknown_release(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "0.32.0", "--variant", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "torch +cpu" in out and "2.13.0+cpu" in out
    assert main(["show", "0.10.1.2"]) == 2
    assert "nearest known: 0.10.0, 0.10.1.1, 0.10.2" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        # FLEX_ATTENTION in batch-invariant mode and the flashinfer sampler came with 0.21.0
        ("0.26.0", {"batch-invariant-backends-0.21", "flashinfer-sampler-required"}, set()),
        ("0.20.0", {"batch-invariant-backends-0.16"}, {"flashinfer-sampler-required"}),
        # the FA3 + FULL issue was seen on 0.20.0 and 0.26.0 only within its range
        ("0.26.0", {"flash-attn-full-cudagraph-0.20"}, set()),
        ("0.19.1", set(), {"flash-attn-full-cudagraph-0.20", "batch-invariant-backends-0.21"}),
    ],
)
def test_show_lists_the_curated_facts_of_the_release_with_their_source(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    version: str,
    present: set[str],
    absent: set[str],
) -> None:
    monkeypatch.delenv("VLLM_PIN_MATRIX_DIR")  # the committed matrix, not the fixture one
    assert main(["show", version, "--json"]) == 0
    facts = {f["id"]: f for f in json.loads(capsys.readouterr().out)["facts"]}
    assert present <= facts.keys() and not absent & facts.keys()
    assert all(f["source"].startswith("https://") for f in facts.values())
