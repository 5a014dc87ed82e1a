"""`vllm-pin doctor`: each seed's error, for 0.10.1.1 and for 0.33.0, gets that release's fix."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from vllm_pin.cli import main
from vllm_pin.commands import doctor as command
from vllm_pin.doctor import diagnose as doctor
from vllm_pin.matrix import timeline as tl
from vllm_pin.matrix.knowledge import Knowledge
from vllm_pin.matrix.model import load_matrix
from vllm_pin.verify.env import Dist, Env

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


# -- analyzers, --python and ranking ------------------------------------------------------

UNDEFINED = (
    "ImportError: /venv/lib/python3.12/site-packages/vllm/_C.abi3.so: undefined symbol: "
    "_ZN3c1017RegisterOperatorsD1Ev\n"
)


def fake_env(torch: str, vllm: str) -> Env:
    dists = {n: Dist(n, Version(v)) for n, v in (("torch", torch), ("vllm", vllm))}
    return Env(
        executable="/venv/bin/python",
        python=Version("3.12.3"),
        markers={},
        machine="x86_64",
        glibc=Version("2.35"),
        dists=dists,
        torch_cuda="12.8",
        vllm_site=None,
        environ={},
    )


def test_python_joins_the_log_to_the_installed_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "symbol.log"
    log.write_text(UNDEFINED, encoding="utf-8")
    seen: list[str | None] = []

    def inspect(python: str | None) -> Env:
        seen.append(python)
        return fake_env("2.8.0", "0.10.1.1")

    monkeypatch.setattr(command, "inspect_interpreter", inspect)
    code, data = run_json(capsys, str(log), "--python", "/venv/bin/python")
    assert code == 0 and seen == ["/venv/bin/python"]
    assert data["vllm"] == "0.10.1.1"
    assert data["versions"]["torch"] == "2.8.0 (installed in /venv/bin/python)"
    (finding,) = [f for f in data["findings"] if f["id"] == "undefined-symbol"]
    assert "your torch is 2.8.0, vllm 0.10.1.1 was built for 2.7.1" in finding["fix"]
    assert "torch==2.7.1" in finding["fix"]


def test_python_inspects_a_real_interpreter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "symbol.log"
    log.write_text(UNDEFINED, encoding="utf-8")
    code, data = run_json(capsys, str(log), "--python", sys.executable, "--vllm", "0.10.1.1")
    assert code == 0
    assert data["versions"]["python"].endswith(f"(installed in {sys.executable})")


def test_ranking_puts_the_curated_issue_first_and_says_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["doctor", str(LOGS / "vllm-c-undefined-symbol.log"), "--vllm", "0.10.1.1"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("2 matches, most specific first; [vllm-c-undefined-symbol] ranks first")
    assert "its exact signature matched and the release is in its affected range" in first
    assert out.index("[vllm-c-undefined-symbol]") < out.index("[undefined-symbol]")


@pytest.mark.parametrize(
    ("text", "vllm", "finding", "must"),
    [
        (
            "ImportError: /lib64/libc.so.6: version `GLIBC_2.34' not found (required by "
            "/x/site-packages/flash_attn_2_cuda.cpython-312-x86_64-linux-gnu.so)",
            None,
            "glibc-too-old",
            "build flash-attn on this host",
        ),
        (
            "NVIDIA GeForce RTX 5090 with CUDA capability sm_120 is not compatible with the "
            "current PyTorch installation.",
            "0.6.3",
            "gpu-arch-unsupported",
            "upgrade vllm to >= 0.10.2, the first release whose torch (2.8.0+cu128",
        ),
        (
            "ValueError: The checkpoint you are trying to load has model type `qwen3_moe` but "
            "Transformers does not recognize this architecture.",
            "0.6.3",
            "unknown-model-type",
            "Upgrade vllm to >= 0.8.4",
        ),
        (
            "The model's max seq len (32768) is larger than the maximum number of tokens that "
            "can be stored in KV cache (20000).",
            "0.10.1.1",
            "kv-cache-too-small",
            "max_model_len=20000",
        ),
        (
            "RuntimeError: The NVIDIA driver on your system is too old (found version 12080).",
            "0.20.0",
            "driver-too-old-for-torch",
            "vllm 0.19.1 is the newest release whose pinned torch",
        ),
        (
            'os.environ["VLLM_ATTENTION_BACKEND"] = "TRITON_ATTN"',
            "0.26.0",
            "env-var-not-in-release",
            "attention_backend engine argument",
        ),
    ],
)
def test_analyzer_answers_from_the_matrix(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    vllm: str | None,
    finding: str,
    must: str,
) -> None:
    log = tmp_path / "case.log"
    log.write_text(text + "\n", encoding="utf-8")
    code, data = run_json(capsys, str(log), *(["--vllm", vllm] if vllm else []))
    assert code == 0
    fixes = {f["id"]: f["fix"] for f in data["findings"]}
    assert must in fixes[finding], fixes


def test_a_client_asking_too_many_completion_tokens_stays_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "client.log"
    log.write_text(
        "This model's maximum context length is 6048 tokens. However, you requested 6616 "
        "tokens (568 in the messages, 6048 in the completion).\n",
        encoding="utf-8",
    )
    assert main(["doctor", str(log), "--vllm", "0.10.1.1"]) == 1
