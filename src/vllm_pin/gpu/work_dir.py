"""A gpu-sweep's work dir: what the sweep and each configuration left there.

Every outcome is saved as soon as it is known, so a rerun resumes where a sweep stopped, and
the logs are kept so `--from-work-dir` rebuilds the observation with this version's parsers.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

from vllm_pin.errors import VllmPinError
from vllm_pin.fsutil import atomic_write_text
from vllm_pin.gpu.outcome import read_log, requote_probe
from vllm_pin.matrix.observed import Meta, Outcome, config_name


def _stem(label: str) -> str:
    """A configuration label as a file name (logs, results)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", label)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _load_outcome(path: Path) -> Outcome | None:
    data = read_json(path)
    if data is None:
        return None
    data["token_ids"] = tuple(tuple(r) for r in data.get("token_ids", ()))
    try:
        return Outcome(**data)
    except TypeError:
        return None


@dataclass(frozen=True)
class WorkDir:
    """Where a sweep keeps its files; a configuration's files are named after its label."""

    root: Path

    @property
    def model_dir(self) -> Path:
        return self.root / "tiny-llama"

    def make(self) -> None:
        for d in ("results", "logs", "raw", "cache"):
            (self.root / d).mkdir(parents=True, exist_ok=True)

    def log(self, label: str) -> Path:
        """The configuration's stdout and stderr, vLLM's engine process included."""
        return self.root / "logs" / f"{_stem(label)}.log"

    def raw(self, label: str) -> Path:
        """The smoke test's result, as the configuration's process wrote it."""
        return self.root / "raw" / f"{_stem(label)}.json"

    def spec(self, label: str) -> Path:
        """What the configuration's process is told to run."""
        return self.root / "raw" / f"{_stem(label)}.spec.json"

    def cache(self, label: str) -> Path:
        """The configuration's own VLLM_CACHE_ROOT."""
        return self.root / "cache" / _stem(label)

    def result(self, label: str) -> Path:
        """The configuration's outcome."""
        return self.root / "results" / f"{_stem(label)}.json"

    def write_meta(self, meta: Meta) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        data = {k: (str(v) if isinstance(v, Version) else v) for k, v in asdict(meta).items()}
        atomic_write_text(self.root / "meta.json", json.dumps(data, indent=1) + "\n")

    def save(self, outcome: Outcome) -> None:
        data = {k: v for k, v in asdict(outcome).items() if k != "meta"}
        atomic_write_text(self.result(outcome.label), json.dumps(data, indent=1) + "\n")

    def load(self, label: str) -> Outcome | None:
        """The outcome recorded for ``label``, or None when there is none (or it is unreadable)."""
        return _load_outcome(self.result(label))

    def read(self) -> tuple[Meta, list[Outcome]]:
        """The metadata and outcomes the sweep recorded, its logs read again."""
        data = read_json(self.root / "meta.json")
        if data is None:
            raise VllmPinError(
                f"{self.root}/meta.json is missing or unreadable; is {self.root} a sweep dir?"
            )
        data["release"] = Version(data["release"])
        data["prompts"] = tuple(data["prompts"])
        meta = Meta(**data)
        recorded = [
            o
            for p in sorted((self.root / "results").glob("*.json"))
            if (o := _load_outcome(p)) is not None
        ]
        if not recorded:
            raise VllmPinError(f"{self.root}/results holds no outcomes")
        outcomes = {}
        for o in recorded:
            log = self.log(o.label)
            if log.is_file():
                text = log.read_text(encoding="utf-8", errors="replace")
                o = read_log(o, text, read_json(self.raw(o.label)))
            outcomes[o.label] = o
        for label, o in outcomes.items():  # skip reasons quote their probe's (re-read) error
            probe = outcomes.get(config_name(o.backend, "", False, False))
            outcomes[label] = requote_probe(o, probe)
        return meta, list(outcomes.values())
