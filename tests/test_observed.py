"""The observation files: round trip, validation, and the query doctor and show use."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from packaging.version import Version

from vllm_pin.errors import MatrixError
from vllm_pin.matrix.observed import (
    Consistency,
    Meta,
    Observation,
    Observations,
    Outcome,
    config_name,
    dump,
    load,
    load_observations,
)

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = sorted((ROOT / "matrix" / "observed").glob("*.toml"))
IDS = ((28, 28, 9), (34, 7, 34))


def meta(**kw: object) -> Meta:
    base = Meta(
        path="observed/0.20.0-h200.toml",
        distribution="vllm",
        release=Version("0.20.0"),
        gpu="NVIDIA H200",
        gpu_slug="h200",
        compute_capability="9.0",
        driver="580.159.04",
        date="2026-11-22",
        command="vllm-pin gpu-sweep --write",
        python="3.12.3",
        torch="2.11.0+cu130",
        configs_source='timeline.toml [vllm."0.20.0"]',
        llm_kwargs='{"gpu_memory_utilization": 0.05}',
        prompts=("hello world",),
        max_tokens=3,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def outcome(backend: str = "", mode: str = "", **kw: object) -> Outcome:
    bi = bool(kw.pop("batch_invariant", False))
    base = Outcome(
        config=config_name(backend, mode, bi, False),
        run=1,
        backend=backend,
        cudagraph_mode=mode,
        batch_invariant=bi,
        enforce_eager=False,
        status="ok",
        error="",
        selected_backend="",
        selected_mode=mode or "FULL_AND_PIECEWISE",
        mode_note="",
        token_ids=IDS,
        import_s=6.5,
        engine_start_s=37.25,
        generate_s=0.5,
        wall_s=45.0,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def small() -> Observation:
    outcomes = (
        outcome(selected_backend="FLASH_ATTN"),
        outcome("FLASH_ATTN", "FULL", token_ids=((28, 40, 25), (34, 22, 18))),
        outcome(
            "FLEX_ATTENTION",
            batch_invariant=True,
            status="error",
            error="ValueError: Selected backend AttentionBackendEnum.FLEX_ATTENTION is not valid "
            "for this configuration. Reason: ['batch invariance not supported']",
            token_ids=(),
            selected_mode="",
        ),
        outcome("FLEX_ATTENTION", "FULL"),
        outcome(
            "ROCM_AITER_MLA",
            "FULL",
            status="skipped",
            error="not run: ...",
            token_ids=(),
            selected_mode="",
        ),
    )
    consistency = Consistency(
        "default", IDS, ("FLEX_ATTENTION+FULL", "default"), ("FLASH_ATTN+FULL",), ()
    )
    return Observation(meta(), consistency, outcomes)


def write(tmp_path: Path, text: str, name: str = "0.20.0-h200.toml") -> Path:
    path = tmp_path / "observed" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("path", COMMITTED, ids=[p.name for p in COMMITTED])
def test_committed_files_round_trip_byte_for_byte(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert dump(load(path)) == text


def test_committed_files_hold_the_evidence_doctor_cites() -> None:
    obs = load_observations(ROOT / "matrix")
    flex_full = obs.outcomes("0.20.0", backend="FLEX_ATTENTION", mode="FULL")
    assert [(o.meta.gpu_slug, o.status) for o in flex_full if o.meta] == [
        ("h100", "ok"),
        ("h200", "ok"),
    ]
    assert "NVIDIA H200" in flex_full[1].source and "2026-11-22" in flex_full[1].source
    flex_bi = obs.outcomes("0.20.0", backend="FLEX_ATTENTION", batch_invariant=True)
    assert [o.status for o in flex_bi] == ["error", "error"]
    assert all("batch invariance not supported" in o.error for o in flex_bi)


def test_written_file_round_trips(tmp_path: Path) -> None:
    text = dump(small())
    path = write(tmp_path, text)
    loaded = load(path)
    assert dump(loaded) == text
    assert loaded.outcomes == small().outcomes  # meta is not compared
    assert loaded.consistency == small().consistency


def test_strings_with_quotes_and_control_characters_survive(tmp_path: Path) -> None:
    tricky = 'RuntimeError: bad "shape" \\ [1]\ttab \x7f end'
    obs = small()
    obs = replace(
        obs, outcomes=(*obs.outcomes[:2], replace(obs.outcomes[2], error=tricky), *obs.outcomes[3:])
    )
    loaded = load(write(tmp_path, dump(obs)))
    assert loaded.outcomes[2].error == tricky


BAD = [
    ('status = "error"', 'status = "maybe"', "field 'status' must be one of 'ok', 'error'"),
    ("schema = 1", "schema = 2", "schema must be 1"),
    ('date = "2026-11-22"', 'date = "22.11.2026"', "is not YYYY-MM-DD"),
    ('release = "0.20.0"', 'release = "zero"', "'zero' is not a valid version"),
    ('gpu-slug = "h200"', 'gpu-slug = "H 200"', "lowercase letters"),
    ("run = 1", "run = 0", "run must be >= 1"),
    ("import-s = 6.5", 'import-s = "6.5"', "field 'import-s' must be a float"),
    ("run = 1", "run = true", "field 'run' must be a int"),
    ('config = "FLASH_ATTN+FULL"', 'config = "FLASH_ATTN+NONE"', "does not match"),
    ('agree = ["FLEX_ATTENTION+FULL", "default"]', 'agree = ["TRITON_ATTN"]', "have no outcome"),
    ('diverge = ["FLASH_ATTN+FULL"]', 'diverge = ["default"]', "both agree and diverge"),
    ('llm-kwargs = "{', 'llm-kwargs = "not json {', "must be a JSON object"),
]


@pytest.mark.parametrize(("old", "new", "message"), BAD, ids=[b[2] for b in BAD])
def test_bad_fields_are_refused_naming_file_and_entry(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    text = dump(small())
    assert old in text
    path = write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(MatrixError, match=re.escape(message)) as err:
        load(path)
    assert "observed/0.20.0-h200.toml" in str(err.value)


def test_token_ids_only_with_ok_and_error_only_without(tmp_path: Path) -> None:
    obs = small()
    ok_with_error = replace(obs.outcomes[0], error="boom")
    failed_with_ids = replace(obs.outcomes[2], token_ids=IDS)
    for broken, message in (
        (ok_with_error, "error must be empty"),
        (failed_with_ids, "token-ids must be present exactly"),
    ):
        text = dump(
            replace(obs, outcomes=(broken, *obs.outcomes[1:]))
            if broken is ok_with_error
            else replace(obs, outcomes=(*obs.outcomes[:2], broken, *obs.outcomes[3:]))
        )
        with pytest.raises(MatrixError, match=message):
            load(write(tmp_path, text))


def test_duplicate_outcomes_missing_tables_and_bad_toml(tmp_path: Path) -> None:
    obs = small()
    twice = dump(replace(obs, outcomes=(*obs.outcomes, obs.outcomes[1])))
    with pytest.raises(MatrixError, match="duplicate configurations"):
        load(write(tmp_path, twice))
    no_outcomes = dump(obs).split("[[outcome]]")[0]
    with pytest.raises(MatrixError, match=r"no \[\[outcome\]\] entries"):
        load(write(tmp_path, no_outcomes))
    with pytest.raises(MatrixError, match="not valid TOML"):
        load(write(tmp_path, "[meta\n"))


def test_file_name_must_match_release_and_gpu(tmp_path: Path) -> None:
    path = write(tmp_path, dump(small()), name="0.21.0-h200.toml")
    with pytest.raises(MatrixError, match=r"should be named 0\.20\.0-h200\.toml"):
        load(path)


@pytest.mark.parametrize(
    ("query", "labels"),
    [
        (
            {},
            ["default", "FLASH_ATTN+FULL", "FLEX_ATTENTION+batch-invariant", "FLEX_ATTENTION+FULL"],
        ),
        # the default run counts as FLASH_ATTN: that is the backend vLLM chose for it
        ({"backend": "FLASH_ATTN"}, ["default", "FLASH_ATTN+FULL"]),
        ({"mode": "FULL"}, ["FLASH_ATTN+FULL", "FLEX_ATTENTION+FULL"]),
        (
            {"backend": "FLEX_ATTENTION", "batch_invariant": True},
            ["FLEX_ATTENTION+batch-invariant"],
        ),
        ({"batch_invariant": False, "mode": "FULL_AND_PIECEWISE"}, ["default"]),
        ({"status": "skipped"}, ["ROCM_AITER_MLA+FULL"]),
        ({"backend": "TRITON_ATTN"}, []),
    ],
)
def test_outcomes_query(query: dict[str, object], labels: list[str]) -> None:
    obs = Observations([small()])
    assert [o.label for o in obs.outcomes("0.20.0", **query)] == labels  # type: ignore[arg-type]
    assert obs.outcomes(Version("0.20.0"), **query) == obs.outcomes("0.20.0", **query)  # type: ignore[arg-type]


def test_other_releases_have_no_outcomes_and_bad_versions_are_refused() -> None:
    obs = Observations([small()])
    assert obs.outcomes("0.19.1") == []
    assert obs.releases() == [Version("0.20.0")]
    with pytest.raises(MatrixError, match="not a valid vLLM version"):
        obs.outcomes("latest")


def test_load_observations_of_a_matrix_without_observations(tmp_path: Path) -> None:
    assert load_observations(tmp_path).files == ()
    write(tmp_path, dump(small()))
    loaded = load_observations(tmp_path)
    assert [f.meta.gpu_slug for f in loaded.files] == ["h200"]
    assert loaded.files[0].outcome("FLASH_ATTN+FULL") is not None
    assert loaded.files[0].outcome("FLASH_ATTN+FULL#2") is None
