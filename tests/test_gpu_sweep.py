"""gpu-sweep without a GPU: planning, log reading on real H200 output, consistency, orchestration.

The orchestration test runs the real sweep (processes, process groups, timeouts, resume)
against a stand-in vllm package (tests/fixtures/gpu/fake_site) and a stand-in nvidia-smi, so it
never claims a GPU result: every GPU fact checked here comes from logs recorded on an H200.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from packaging.version import Version

from vllm_pin.errors import VllmPinError
from vllm_pin.gpu.consistency import check_consistency
from vllm_pin.gpu.log import selected_mode
from vllm_pin.gpu.machine import gpu_info, gpu_slug, installed_vllm
from vllm_pin.gpu.observation import build_observation, summary
from vllm_pin.gpu.outcome import (
    outcome_from_run,
    requote_probe,
    skip_reason,
    skipped,
    unlocks_dependents,
)
from vllm_pin.gpu.plan import Config, Knobs, knobs_from_entry, plan, release_knobs
from vllm_pin.gpu.process import BASE_ENV, Running, child_env
from vllm_pin.gpu.scheduler import waiting_line
from vllm_pin.gpu.work_dir import WorkDir
from vllm_pin.in_env.smoke import error_signature, exception_lines
from vllm_pin.matrix.observed import MODE_ORDER, Outcome, dump, load
from vllm_pin.matrix.timeline import TimelineEntry, dumps

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "gpu"
WORK = FIXTURES / "work-0.20.0-h200"
MODES = frozenset({"NONE", "PIECEWISE", "FULL", "FULL_DECODE_ONLY", "FULL_AND_PIECEWISE"})


def entry(
    backends: set[str],
    *,
    env_vars: frozenset[str] = frozenset({"VLLM_BATCH_INVARIANT"}),
    engine_args: frozenset[str] = frozenset({"attention_backend", "kv_cache_memory_bytes"}),
    modes: frozenset[str] = MODES,
) -> TimelineEntry:
    return TimelineEntry(
        env_vars=env_vars,
        env_var_choices={},
        attention_backends=frozenset(backends),
        cudagraph_modes=modes,
        engine_args=engine_args,
        sources={"attention-backends": "vllm/v1/attention/backends/registry.py"},
    )


def knobs(backends: set[str], **kw: frozenset[str]) -> Knobs:
    return knobs_from_entry(entry(backends, **kw), "test")


# -- planning ------------------------------------------------------------------------------


def test_plan_covers_every_backend_mode_batch_invariance_and_eager() -> None:
    p = plan(knobs({"FLASH_ATTN", "FLEX_ATTENTION"}), ["FLASH_ATTN+FULL", "default+eager"] * 2)
    assert [c.label for c in p.probes] == [
        "default",
        "default+eager",
        "default+batch-invariant",
        "FLASH_ATTN",
        "FLEX_ATTENTION",
    ]
    assert [c.label for c in p.dependents["FLEX_ATTENTION"]] == [
        "FLEX_ATTENTION+NONE",
        "FLEX_ATTENTION+PIECEWISE",
        "FLEX_ATTENTION+FULL",
        "FLEX_ATTENTION+FULL_DECODE_ONLY",
        "FLEX_ATTENTION+FULL_AND_PIECEWISE",
        "FLEX_ATTENTION+batch-invariant",
    ]
    assert [c.label for c in p.dependents["FLASH_ATTN"][-2:]] == [
        "FLASH_ATTN+FULL#2",
        "FLASH_ATTN+FULL#3",
    ]
    assert [c.label for c in p.dependents[""]] == ["default+eager#2", "default+eager#3"]
    assert len(p.all()) == 5 + 2 * 6 + 4


def test_plan_from_the_committed_timeline_for_0_20_0() -> None:
    k = release_knobs(Version("0.20.0"), ROOT / "matrix" / "timeline.toml", None)
    p = plan(k)
    assert len(k.backends) == 25 and k.modes == MODE_ORDER
    assert len(p.all()) == 3 + 25 * (1 + 6)  # probe + 5 modes + batch invariance
    assert not k.backend_env and k.batch_invariant and k.kv_cache_bytes


def test_old_release_takes_the_backend_from_the_environment_and_has_no_batch_invariance() -> None:
    k = knobs(
        {"XFORMERS"},
        env_vars=frozenset({"VLLM_ATTENTION_BACKEND"}),
        engine_args=frozenset(),
        modes=frozenset(),
    )
    p = plan(k)
    assert [c.label for c in p.all()] == ["default", "default+eager", "XFORMERS"]
    x = p.probes[-1]
    assert k.env(x) == {"VLLM_ATTENTION_BACKEND": "XFORMERS"}
    assert k.llm_kwargs(x, {"gpu_memory_utilization": 0.05}) == {"gpu_memory_utilization": 0.05}


def test_new_release_takes_backend_and_mode_as_engine_arguments() -> None:
    k = knobs({"FLEX_ATTENTION"})
    c = Config("FLEX_ATTENTION", "FULL", batch_invariant=True)
    assert k.llm_kwargs(c, {}) == {
        "attention_backend": "FLEX_ATTENTION",
        "compilation_config": {"cudagraph_mode": "FULL"},
    }
    assert k.env(c) == {"VLLM_BATCH_INVARIANT": "1"}
    assert k.llm_kwargs(Config(enforce_eager=True), {}) == {"enforce_eager": True}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"backends": set()}, "lists no attention backends"),
        (
            {"backends": {"X"}, "engine_args": frozenset(), "env_vars": frozenset()},
            "a backend cannot be chosen",
        ),
    ],
)
def test_releases_that_cannot_be_swept_are_refused(kw: dict[str, object], message: str) -> None:
    backends = kw.pop("backends")
    with pytest.raises(VllmPinError, match=message):
        knobs_from_entry(entry(backends, **kw), "test")  # type: ignore[arg-type]


def test_repeat_of_an_unknown_configuration_is_refused() -> None:
    with pytest.raises(VllmPinError, match="--repeat FLASH_ATTN\\+FUL: no such configuration"):
        plan(knobs({"FLASH_ATTN"}), ["FLASH_ATTN+FUL"])


def test_only_keeps_the_named_configurations_in_plan_order() -> None:
    p = plan(knobs({"FLASH_ATTN", "FLEX_ATTENTION"}), ["FLASH_ATTN+FULL"])
    kept = p.only(["FLASH_ATTN+FULL", "default", "FLASH_ATTN"])
    assert [c.label for c in kept.all()] == [
        "default",
        "FLASH_ATTN",
        "FLASH_ATTN+FULL",
        "FLASH_ATTN+FULL#2",
    ]
    assert kept.dependents["FLEX_ATTENTION"] == ()
    with pytest.raises(VllmPinError, match=r"--only \['NOPE'\]: no such configuration"):
        p.only(["default", "NOPE"])


def test_knobs_from_the_installed_source_when_the_timeline_has_no_entry(tmp_path: Path) -> None:
    site = tmp_path / "site"
    registry = site / "vllm" / "v1" / "attention" / "backends" / "registry.py"
    registry.parent.mkdir(parents=True)
    registry.write_text("class AttentionBackendEnum(Enum):\n    FLASH_ATTN = 'x'\n")
    (site / "vllm" / "envs.py").write_text(
        "environment_variables = {'VLLM_ATTENTION_BACKEND': lambda: None}\n"
    )
    with pytest.raises(VllmPinError, match=r"none\.toml has no entry for vllm 0\.20\.0"):
        release_knobs(Version("0.20.0"), tmp_path / "none.toml", None)
    k = release_knobs(Version("0.20.0"), tmp_path / "none.toml", site / "vllm")
    assert (k.backends, k.modes, k.backend_env, k.batch_invariant) == (
        ("FLASH_ATTN",),
        (),
        True,
        False,
    )
    assert k.source == "installed vllm 0.20.0 source (vllm/v1/attention/backends/registry.py)"
    stand_in = FIXTURES / "fake_site" / "vllm"  # no source files: nothing to sweep
    with pytest.raises(VllmPinError, match=r"source \(none\) lists no attention backends"):
        release_knobs(Version("0.20.0"), tmp_path / "none.toml", stand_in)


def test_gpu_and_vllm_are_read_without_importing_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(FIXTURES / "bin"))
    assert gpu_info() == ("NVIDIA H100 80GB HBM3", "580.159.04", "9.0")
    monkeypatch.setenv("PATH", str(FIXTURES))  # no nvidia-smi there
    with pytest.raises(VllmPinError, match="the sweep needs an NVIDIA GPU"):
        gpu_info()
    with pytest.raises(VllmPinError, match="vllm is not installed in this interpreter"):
        installed_vllm()
    monkeypatch.syspath_prepend(str(FIXTURES / "fake_site"))
    assert installed_vllm() == (Version("0.20.0"), FIXTURES / "fake_site" / "vllm")
    assert "vllm" not in sys.modules


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("NVIDIA H200", "h200"),
        ("NVIDIA H100 80GB HBM3", "h100"),
        ("NVIDIA H100 PCIe", "h100"),
        ("NVIDIA A100-SXM4-80GB", "a100"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),
        ("NVIDIA L40S", "l40s"),
    ],
)
def test_gpu_slug(name: str, slug: str) -> None:
    assert gpu_slug(name) == slug


# -- reading real H200 logs ----------------------------------------------------------------


def log(stem: str) -> str:
    return (WORK / "logs" / f"{stem}.log").read_text(encoding="utf-8")


def raw(stem: str) -> dict[str, object]:
    data = json.loads((WORK / "raw" / f"{stem}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize(
    ("stem", "signature"),
    [
        (
            "FLEX_ATTENTION_batch-invariant",
            "ValueError: Selected backend AttentionBackendEnum.FLEX_ATTENTION is not valid for "
            "this configuration. Reason: ['batch invariance not supported']",
        ),
        (
            "TREE_ATTN_FULL",
            "ValueError: CUDAGraphMode.FULL is not supported with TreeAttentionBackend backend "
            "(support: AttentionCGSupport.NEVER); please try cudagraph_mode=PIECEWISE, and make "
            "sure compilation mode is VLLM_COMPILE",
        ),
        (
            "CPU_ATTN",
            "AttributeError: '_OpNamespace' '_C' object has no attribute 'get_scheduler_metadata'",
        ),
        (
            "FLASH_ATTN_DIFFKV",
            "RuntimeError: shape '[4096, 16, 2, 192]' is invalid for input of size 16777216",
        ),
        (
            "CUSTOM",
            "ValueError: Backend CUSTOM must be registered before use. Use "
            "register_backend(Backend.CUSTOM, 'your.module.YourClass')",
        ),
    ],
)
def test_error_signature_is_the_engine_root_cause_not_the_wrapper(
    stem: str, signature: str
) -> None:
    text = log(stem) + "\n" + str(raw(stem).get("traceback", ""))
    assert exception_lines(text)[-1] != signature  # the last one raised only wraps it
    assert error_signature(text) == signature


def test_exception_lines_keep_frame_indentation_under_engine_prefixes() -> None:
    lines = exception_lines(log("FLEX_ATTENTION_batch-invariant"))
    assert lines and not any(x.startswith("File ") for x in lines)


def test_error_signature_without_traceback_uses_the_fallback() -> None:
    assert error_signature("INFO nothing went wrong here\n", "exit status 1") == "exit status 1"
    assert error_signature("Traceback (most recent call last):\n  x\n" + "E" * 900).endswith("...")


def test_mode_lowered_by_the_engine_is_read_from_its_log() -> None:
    mode, note = selected_mode(log("TREE_ATTN"), "FULL_AND_PIECEWISE")
    assert mode == "PIECEWISE"
    assert "TreeAttentionBackend" in note and note.endswith("attention is compiled piecewise")
    assert selected_mode(log("default"), "CUDAGraphMode.FULL_AND_PIECEWISE") == (
        "FULL_AND_PIECEWISE",
        "",
    )


def test_outcome_of_a_recorded_run() -> None:
    ok = outcome_from_run(
        Config(), log("default"), raw("default"), returncode=0, wall_s=45.61, timeout_s=240
    )
    assert (ok.status, ok.selected_backend, ok.selected_mode) == (
        "ok",
        "FLASH_ATTN",
        "FULL_AND_PIECEWISE",
    )
    assert ok.token_ids == ((28, 28, 9, 9, 9, 9, 9, 9), (34, 7, 34, 7, 34, 7, 37, 58))
    assert ok.wall_s == 45.6 and ok.engine_start_s > 0
    flex = Config("FLEX_ATTENTION", batch_invariant=True)
    bad = outcome_from_run(
        flex,
        log("FLEX_ATTENTION_batch-invariant"),
        raw("FLEX_ATTENTION_batch-invariant"),
        returncode=1,
        wall_s=36.1,
        timeout_s=240,
    )
    assert bad.status == "error" and "batch invariance not supported" in bad.error
    assert bad.token_ids == () and bad.selected_mode == ""
    hung = outcome_from_run(flex, "", None, returncode=None, wall_s=240, timeout_s=240)
    assert (hung.status, hung.error) == ("timeout", "timeout after 240 s")
    killed = outcome_from_run(flex, "", None, returncode=-9, wall_s=1, timeout_s=240)
    assert killed.error == "killed by signal SIGKILL, no traceback"


def test_dependents_run_after_cudagraph_errors_only() -> None:
    probe = skipped(Config("X"), "")
    assert not unlocks_dependents(replace(probe, status="error", error="ValueError: non-MLA"))
    assert unlocks_dependents(replace(probe, status="error", error="CUDAGraphMode.FULL is not"))
    assert unlocks_dependents(replace(probe, status="ok"))


def test_skip_reasons_quote_the_probe_as_it_reads_now() -> None:
    probe = replace(skipped(Config("X"), ""), status="error", error="ValueError: new")
    stale = skipped(Config("X", "FULL"), "not run: X failed: RuntimeError: old wrapper")
    assert (
        requote_probe(stale, probe).error
        == skip_reason(probe)
        == ("not run: X failed: ValueError: new")
    )
    budget = skipped(Config("X", "FULL"), "not started: the sweep's --budget ran out")
    assert requote_probe(budget, probe) == budget
    assert requote_probe(stale, None) == stale


def test_work_dir_keeps_outcomes_under_file_safe_names(tmp_path: Path) -> None:
    work = WorkDir(tmp_path)
    work.make()
    done = replace(skipped(Config("FLASH_ATTN", "FULL", run=2), ""), status="ok", token_ids=A)
    work.save(done)
    assert work.result(done.label) == tmp_path / "results" / "FLASH_ATTN_FULL_2.json"
    assert work.load("FLASH_ATTN+FULL#2") == done
    assert work.load("FLASH_ATTN+FULL") is None  # never recorded
    work.result("default").write_text("{not json")
    assert work.load("default") is None
    work.result("default+eager").write_text('{"config": "default+eager"}')
    assert work.load("default+eager") is None  # a record from another version's fields


# -- consistency ---------------------------------------------------------------------------

A = ((1, 2), (3, 4))
B = ((1, 9), (3, 4))


def ran(backend: str, mode: str, ids: tuple[tuple[int, ...], ...], run: int = 1) -> Outcome:
    base = skipped(Config(backend, mode, run=run), "")
    return replace(base, status="ok", error="", token_ids=ids)


def test_consistency_flags_divergent_and_nondeterministic_configs() -> None:
    outcomes = [
        ran("", "", A),
        ran("FLASH_ATTN", "FULL", B),
        ran("FLASH_ATTN", "FULL", A, run=2),
        ran("TRITON_ATTN", "FULL", A),
        skipped(Config("FLASHMLA"), "not run"),
    ]
    c = check_consistency(outcomes)
    assert c.reference == "default" and c.token_ids == A
    assert c.diverge == ("FLASH_ATTN+FULL",)
    assert c.agree == ("FLASH_ATTN+FULL#2", "TRITON_ATTN+FULL", "default")
    assert c.nondeterministic == ("FLASH_ATTN+FULL",)


def test_consistency_without_the_default_takes_the_most_common_ids() -> None:
    c = check_consistency([ran("X", "", B), ran("Y", "", A), ran("Z", "", A)])
    assert (c.reference, c.diverge) == ("Y", ("X",))
    assert check_consistency([skipped(Config(), "x")]).reference == ""


def test_recorded_h200_sweep_rebuilds_the_committed_observation_byte_for_byte() -> None:
    meta, outcomes = WorkDir(WORK).read()
    obs = build_observation(meta, outcomes)
    committed = ROOT / "matrix" / "observed" / "0.20.0-h200.toml"
    assert dump(obs) == committed.read_text(encoding="utf-8")
    c = load(committed).consistency
    # what the H200 showed: FLASH_ATTN + FULL alone diverges, the same way in two processes
    assert c.diverge == ("FLASH_ATTN+FULL", "FLASH_ATTN+FULL#2")
    assert c.nondeterministic == ()
    assert "FLASH_ATTN+FULL_DECODE_ONLY" in c.agree and "FLEX_ATTENTION+FULL" in c.agree


def test_summary_counts_statuses_and_groups_failures_by_signature() -> None:
    meta, outcomes = WorkDir(WORK).read()
    lines = summary(build_observation(meta, outcomes))
    assert lines[:3] == [
        "gpu-sweep: vllm 0.20.0 on NVIDIA H200: 24 error, 35 ok, 120 skipped",
        "gpu-sweep: reference default token ids "
        "[[28, 28, 9, 9, 9, 9, 9, 9], [34, 7, 34, 7, 34, 7, 37, 58]]",
        "gpu-sweep: 33 agree; diverging: FLASH_ATTN+FULL, FLASH_ATTN+FULL#2",
    ]
    counts = [int(x.split(" x ")[0].split()[-1]) for x in lines[3:]]
    assert sum(counts) == 24 and counts == sorted(counts, reverse=True)


def test_read_work_dir_refuses_a_directory_that_is_no_sweep(tmp_path: Path) -> None:
    with pytest.raises(VllmPinError, match=r"meta\.json is missing"):
        WorkDir(tmp_path).read()


# -- orchestration, with a stand-in vllm ---------------------------------------------------


def sweep(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    timeline = tmp_path / "timeline.toml"
    if not timeline.exists():
        timeline.write_text(
            dumps(
                {
                    Version("0.20.0"): entry(
                        {"GOOD", "FLAKY", "BROKEN", "HANG"}, modes=frozenset({"NONE", "FULL"})
                    )
                }
            )
        )
        model = tmp_path / "work" / "tiny-llama"
        model.mkdir(parents=True)
        (model / "model.safetensors").write_bytes(b"")  # the stand-in never reads it
    env = dict(os.environ)
    env["PATH"] = f"{FIXTURES / 'bin'}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = os.pathsep.join([str(FIXTURES / "fake_site"), str(ROOT / "src")])
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "vllm_pin",
            "gpu-sweep",
            "--work-dir",
            str(tmp_path / "work"),
            "--timeline",
            str(timeline),
            "--output",
            str(tmp_path / "0.20.0-h100.toml"),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_child_env_drops_the_callers_vllm_settings(tmp_path: Path) -> None:
    parent = {"PATH": "/bin", "VLLM_ATTENTION_BACKEND": "XFORMERS", "PYTHONPATH": "/elsewhere"}
    env = child_env(parent, {"VLLM_BATCH_INVARIANT": "1"}, tmp_path / "cache")
    assert "VLLM_ATTENTION_BACKEND" not in env
    assert env["PYTHONPATH"] == os.pathsep.join([str(ROOT / "src"), "/elsewhere"])
    assert env["VLLM_CACHE_ROOT"] == str(tmp_path / "cache")
    assert env["VLLM_BATCH_INVARIANT"] == "1" and env["PATH"] == "/bin"
    assert BASE_ENV.items() <= env.items()


def test_sweep_runs_isolates_times_out_and_resumes(tmp_path: Path) -> None:
    first = sweep(tmp_path, "--jobs", "6", "--timeout", "4", "--repeat", "FLAKY+FULL")
    assert first.returncode == 0, first.stderr
    obs = load(tmp_path / "0.20.0-h100.toml")
    status = {o.label: o.status for o in obs.outcomes}
    assert status["HANG"] == "timeout" and status["HANG+FULL"] == "skipped"
    assert status["BROKEN"] == "error"
    assert obs.outcome("BROKEN+NONE").error.startswith("not run: BROKEN failed: ValueError")  # type: ignore[union-attr]
    assert obs.outcome("BROKEN").error.endswith("Reason: ['MLA not supported']")  # type: ignore[union-attr]
    assert obs.outcome("GOOD+FULL").selected_mode == "PIECEWISE"  # type: ignore[union-attr]
    assert "batch invariance not supported" in obs.outcome("GOOD+batch-invariant").error  # type: ignore[union-attr]
    assert obs.consistency.diverge == ("FLAKY+FULL", "FLAKY+FULL#2")
    assert obs.consistency.nondeterministic == ("FLAKY+FULL",)
    assert obs.meta.gpu == "NVIDIA H100 80GB HBM3" and obs.meta.gpu_slug == "h100"
    assert "FULL_AND_PIECEWISE" not in {o.cudagraph_mode for o in obs.outcomes}  # not in timeline
    # a rerun resumes: nothing runs again, the file comes out the same
    before = (tmp_path / "0.20.0-h100.toml").read_text()
    again = sweep(tmp_path, "--jobs", "6", "--timeout", "4", "--repeat", "FLAKY+FULL")
    assert "gpu-sweep: [" not in again.stdout
    assert (tmp_path / "0.20.0-h100.toml").read_text() == before


def test_sweep_budget_skips_and_a_resume_finishes(tmp_path: Path) -> None:
    cut = sweep(tmp_path, "--budget", "1", "--only", "GOOD", "--only", "default")
    obs = load(tmp_path / "0.20.0-h100.toml")
    assert {o.status for o in obs.outcomes} == {"skipped"}
    assert cut.returncode == 1  # the default configuration did not run
    done = sweep(tmp_path, "--only", "GOOD", "--only", "default")
    assert done.returncode == 0, done.stderr
    assert [o.status for o in load(tmp_path / "0.20.0-h100.toml").outcomes] == ["ok", "ok"]


def test_dry_run_lists_configurations_without_a_gpu(tmp_path: Path) -> None:
    out = sweep(tmp_path, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "FLAKY+FULL" in out.stdout and '"attention_backend": "FLAKY"' in out.stdout
    assert not (tmp_path / "0.20.0-h100.toml").exists()


def test_bad_arguments_are_one_line_errors(tmp_path: Path) -> None:
    out = sweep(tmp_path, "--jobs", "0")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "--jobs must be >= 1" in out.stderr
    out = sweep(tmp_path, "--only", "NOPE")
    assert out.returncode == 2 and "no such configuration" in out.stderr


@pytest.mark.parametrize(
    ("status", "log_text", "returncode", "selected"),
    [
        # vLLM honours an explicit backend or raises, and does not always say so in its log
        ("ok", "", 0, "FLEX_ATTENTION"),
        ("ok", "INFO Using AttentionBackendEnum.TRITON_ATTN backend.", 0, "TRITON_ATTN"),
        # a timeout keeps its error but the backend announced before it is read from the log
        (
            "timeout",
            "INFO Using AttentionBackendEnum.FLEX_ATTENTION backend.",
            None,
            "FLEX_ATTENTION",
        ),
        ("timeout", "", None, ""),
        # a backend vLLM refused was never selected
        ("error", "Traceback (most recent call last):\nValueError: not valid", 1, ""),
    ],
)
def test_selected_backend_is_filled_wherever_the_run_shows_it(
    status: str, log_text: str, returncode: int | None, selected: str
) -> None:
    result = {"status": "passed", "token_ids": [[1]], "timings": {}} if status == "ok" else None
    o = outcome_from_run(
        Config("FLEX_ATTENTION"), log_text, result, returncode=returncode, wall_s=5, timeout_s=400
    )
    assert (o.status, o.selected_backend) == (status, selected)
    if status == "timeout":
        assert o.error == "timeout after 400 s"


def test_waiting_line_names_the_longest_running_configuration_and_its_last_log_line(
    tmp_path: Path,
) -> None:
    done = subprocess.Popen([sys.executable, "-c", ""])
    done.wait()
    logs = {name: tmp_path / f"{name}.log" for name in ("A", "B")}
    logs["A"].write_text("# A: spec\nINFO x\n(EngineCore pid=3) INFO Capturing CUDA graphs\n\n")
    logs["B"].write_text("")
    running = [
        Running(Config("B"), done, started=90.0, timeout=400, log=logs["B"]),
        Running(Config("A"), done, started=10.0, timeout=400, log=logs["A"]),
    ]
    assert waiting_line(running, 3, now=130.0) == (
        "gpu-sweep: still waiting: 2 running, 3 queued; longest A 120s of 400s "
        "((EngineCore pid=3) INFO Capturing CUDA graphs)"
    )
    assert waiting_line(running[:1], 0, now=100.0).endswith("longest B 10s of 400s (no output yet)")
