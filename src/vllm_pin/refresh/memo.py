"""A full refresh whose inputs did not change since the last one: its texts, without the work.

What a full refresh writes is a function of the index pages it read (they list every file and
its sha256, and what is read out of a file is fixed by its sha256), of the index URL it records,
and of the code: vllm-pin's own sources, `packaging` and Python. After a full refresh its texts
are kept under `<cache>/refresh/` with the digest of each page it read; the next full refresh
reads those pages again (one round of requests in parallel: PyPI's pages carry no validator, so
they must be read) and, when every digest and the code still match, returns the kept texts:
nothing is parsed, read from the wheel cache or rendered.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from pathlib import Path

import packaging

import vllm_pin
from vllm_pin.fsutil import write_cache_file
from vllm_pin.index.pypi import PyPIClient

__all__ = ["code_digest", "load", "store"]

#: bump when the memo file's layout changes
_LAYOUT = 1


@functools.cache
def code_digest() -> str:
    """A digest of everything besides the index that a refresh's output depends on."""
    digest = hashlib.sha256(f"{_LAYOUT} {sys.version} {packaging.__version__}".encode())
    root = Path(vllm_pin.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _path(client: PyPIClient, recorded_index_url: str) -> Path:
    key = hashlib.sha256(f"{client.index_url}\0{recorded_index_url}".encode()).hexdigest()
    return client.cache_dir / "refresh" / f"{key}.json"


def load(client: PyPIClient, recorded_index_url: str) -> list[str] | None:
    """The texts of the last full refresh when nothing they depend on changed; else None.

    Reads the index pages that refresh read (through `client`, which then holds them)."""
    try:
        memo = json.loads(_path(client, recorded_index_url).read_bytes())
        code, pages, texts = memo["code"], memo["pages"], memo["texts"]
    except (OSError, ValueError, TypeError, KeyError, RecursionError):
        return None  # none yet, or damaged: a full refresh writes it again
    if (
        code != code_digest()
        or not isinstance(pages, dict)
        or not isinstance(texts, list)
        or not all(isinstance(t, str) for t in texts)
    ):
        return None
    client.map(client.project, sorted(pages))
    return texts if client.page_digests == pages else None


def store(client: PyPIClient, recorded_index_url: str, texts: list[str]) -> None:
    """Keep the texts of a full refresh with the digests of the pages it read."""
    memo = {"code": code_digest(), "pages": client.page_digests, "texts": texts}
    write_cache_file(_path(client, recorded_index_url), json.dumps(memo).encode())
