"""`vllm-pin doctor`: each seed's error, for 0.10.1.1 and for 0.33.0, gets that release's fix."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from packaging.version import Version

from vllm_pin.cli import main
from vllm_pin.doctor import diagnose as doctor
from vllm_pin.matrix import timeline as tl
from vllm_pin.matrix.knowledge import Knowledge
from vllm_pin.matrix.model import load_matrix

ROOT = Path(__file__).parent.parent
LOGS = Path(__file__).parent / "fixtures" / "logs"
SEEDS = {
    "seed000": "seed000-flex-attention-dynamo.log",
    "seed001": "seed001-batch-invariant-flex.log",
    "seed003": "seed003-cudagraph-full-flex.log",
    "seed004": "seed004-torch-inductor-config.log",
}


@pytest.fixture(autouse=True)
def committed_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_PIN_MATRIX_DIR", str(ROOT / "matrix"))


@pytest.fixture(scope="module")
def entries() -> dict[Version, tl.TimelineEntry]:
    return tl.load_timeline(ROOT / "matrix" / "timeline.toml")


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return load_matrix(ROOT / "matrix").knowledge


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(["doctor", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


# (seed, vllm, issue id, affected?, fix range, text the fix must contain, text it must not)
CASES = [
    (
        "seed000",
        "0.10.1.1",
        "flex-attention-dynamo-valueerror",
        True,
        "<0.11.0,>=0.9.1",
        "VLLM_USE_V1=0 VLLM_ATTENTION_BACKEND=XFORMERS",
        "attention_backend=",
    ),
    (
        "seed000",
        "0.33.0",
        "flex-attention-dynamo-valueerror",
        True,
        ">=0.13.0",
        'attention_backend="TRITON_ATTN"',
        "VLLM_",
    ),
    (
        "seed001",
        "0.10.1.1",
        "batch-invariant-backend",
        False,
        "<0.11.1,>=0.9.1",
        "has no batch-invariant mode",
        "VLLM_BATCH_INVARIANT",
    ),
    (
        "seed001",
        "0.33.0",
        "batch-invariant-backend",
        True,
        ">=0.21.0",
        "FLEX_ATTENTION supports batch-invariant mode",
        "VLLM_ATTENTION_BACKEND",
    ),
    (
        "seed003",
        "0.10.1.1",
        "cudagraph-full-flex-attention",
        True,
        "<0.11.0,>=0.10.1",
        '"cudagraph_mode": "PIECEWISE"',
        "VLLM_CUDAGRAPH_MODE",
    ),
    (
        "seed003",
        "0.33.0",
        "cudagraph-full-flex-attention",
        False,
        ">=0.20.0",
        "FlexAttention supports full CUDA graphs",
        "VLLM_CUDAGRAPH_MODE",
    ),
    (
        "seed004",
        "0.10.1.1",
        "torch-inductor-config-attr",
        True,
        "<0.20.0,>=0.8.3",
        "exactly as vllm 0.10.1.1 pins it",
        "torch 2.4",
    ),
    (
        "seed004",
        "0.33.0",
        "torch-inductor-config-attr",
        False,
        ">=0.20.0",
        "no longer touches torch._inductor.config",
        "torch 2.4",
    ),
]


@pytest.mark.parametrize(
    ("seed", "vllm", "issue_id", "affected", "fix_range", "must", "must_not"), CASES
)
def test_seed_error_gets_the_fix_for_the_release(
    capsys: pytest.CaptureFixture[str],
    seed: str,
    vllm: str,
    issue_id: str,
    affected: bool,
    fix_range: str,
    must: str,
    must_not: str,
) -> None:
    code, data = run_json(capsys, str(LOGS / SEEDS[seed]), "--vllm", vllm)
    assert code == 0
    (found,) = data["issues"]
    assert found["id"] == issue_id
    assert found["affected"] is affected
    assert found["fix"]["vllm"] == fix_range
    assert must in found["fix"]["fix"]
    assert must_not not in found["fix"]["fix"]
    assert found["knob-problems"] == []
    assert "{vllm}" not in found["fix"]["fix"] and "{pins}" not in found["fix"]["fix"]


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_seed_fixes_differ_between_releases(capsys: pytest.CaptureFixture[str], seed: str) -> None:
    fixes = []
    for vllm in ("0.10.1.1", "0.33.0"):
        _, data = run_json(capsys, str(LOGS / SEEDS[seed]), "--vllm", vllm)
        fixes.append(data["issues"][0]["fix"]["vllm"])
    assert fixes[0] != fixes[1]


@pytest.mark.parametrize("vllm", ["0.10.1.1", "0.33.0"])
@pytest.mark.parametrize(
    "log", sorted(p.name for p in LOGS.glob("*.log") if p.name != "no-known-issue.log")
)
def test_no_fix_mentions_a_knob_the_release_lacks(
    entries: dict[Version, tl.TimelineEntry], knowledge: Knowledge, vllm: str, log: str
) -> None:
    """Checked independently of knob_problems: every VLLM_* word and every backend-looking
    word of the printed fix must be in the timeline entry of that release."""
    entry = entries[Version(vllm)]
    all_backends = set().union(*(e.attention_backends for e in entries.values()))
    ctx = doctor.Context(Version(vllm), None, entry, Version(vllm))
    (d,) = doctor.diagnose((LOGS / log).read_text(encoding="utf-8"), knowledge, entries, ctx)
    if d.fix is None:
        return
    extra = {"VLLM_BATCH_INVARIANT"} if Version(vllm) < Version("0.19") else set()
    for name in re.findall(r"(?<!unset )\b(VLLM_[A-Z0-9_]+)", d.fix_text):
        assert name in entry.env_vars or name in extra, (log, vllm, name)
    for word in re.findall(r"\b[A-Z][A-Z0-9_]+\b", d.fix_text):
        if word in all_backends:
            assert word in entry.attention_backends, (log, vllm, word)


def test_text_output_and_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", str(LOGS / SEEDS["seed003"]), "--vllm", "0.10.1.1"]) == 0
    out = capsys.readouterr().out
    assert "[cudagraph-full-flex-attention]" in out
    assert "vllm 0.10.1.1: affected" in out
    assert 'compilation_config={"cudagraph_mode": "PIECEWISE"}' in out
    assert "source: https://github.com/vllm-project/vllm/blob/v0.10.1.1/vllm/v1/worker/" in out


def test_named_knob_in_log_gets_timeline_and_replacement(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, data = run_json(capsys, str(LOGS / "unknown-vllm-env-var.log"), "--vllm", "0.22.0")
    assert code == 0
    (found,) = data["issues"]
    assert "first 0.6.4, last 0.11.0" in found["knobs-in-log"]["VLLM_USE_V1"]
    assert "V1 is the only engine" in found["replacements"]["VLLM_USE_V1"]


def test_no_match_exits_one_and_suggests_verify(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", str(LOGS / "no-known-issue.log"), "--vllm", "0.10.1.1"]) == 1
    assert "vllm-pin verify" in capsys.readouterr().out


def test_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    text = (LOGS / SEEDS["seed004"]).read_text(encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    code, data = run_json(capsys, "-", "--vllm", "0.10.1.1")
    assert code == 0 and data["issues"][0]["id"] == "torch-inductor-config-attr"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--vllm", "zero.ten"], "is not a version"),
        (["--torch", "two"], "is not a version"),
    ],
)
def test_usage_errors_exit_two(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["doctor", str(LOGS / SEEDS["seed000"]), *argv]) == 2
    assert message in capsys.readouterr().err


def test_missing_log_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", str(tmp_path / "nope.log"), "--vllm", "0.10.1.1"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_without_vllm_shows_every_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(doctor, "installed_version", lambda *names: None)
    assert main(["doctor", str(LOGS / SEEDS["seed003"])]) == 0
    out = capsys.readouterr().out
    assert "showing every fix" in out
    assert out.count("    vllm ") == 4


def test_dev_build_uses_the_previous_release_knobs(
    entries: dict[Version, tl.TimelineEntry],
) -> None:
    found = doctor.timeline_release(entries, Version("0.23.1.dev0+g0fc695fc6"))
    assert found is not None and found[0] == Version("0.23.0")
    assert doctor.timeline_release(entries, Version("0.0.1")) is None


@pytest.mark.parametrize(
    ("seed", "vllm", "expected"),
    [
        # seed 003 says FlexAttention cannot run FULL; both GPUs ran it on 0.20.0
        ("seed003-cudagraph-full-flex", "0.20.0", ["FLEX_ATTENTION+FULL: ok, greedy ids agree"]),
        # seed 001: batch invariance with FLEX_ATTENTION before PR #40842 (0.21.0)
        (
            "seed001-batch-invariant-flex",
            "0.20.0",
            [
                "FLEX_ATTENTION+batch-invariant: error: ValueError: Selected backend "
                "AttentionBackendEnum.FLEX_ATTENTION is not valid for this configuration. "
                "Reason: ['batch invariance not supported']",
                "TRITON_ATTN+batch-invariant: ok",
            ],
        ),
        ("seed003-cudagraph-full-flex", "0.10.1.1", ["no GPU observation for vllm 0.10.1.1"]),
    ],
)
def test_gpu_observations_are_cited(
    capsys: pytest.CaptureFixture[str], seed: str, vllm: str, expected: list[str]
) -> None:
    code, out = run_json(capsys, str(LOGS / f"{seed}.log"), "--vllm", vllm)
    assert code == 0
    observed = [line for issue in out["issues"] for line in issue["observed"]]
    for text in expected:
        assert any(line.startswith(text) for line in observed), observed
    if vllm == "0.20.0":
        assert {"observed/0.20.0-h100.toml", "observed/0.20.0-h200.toml"} <= {
            line.split(" <- ")[1].split(" ")[0] for line in observed
        }
