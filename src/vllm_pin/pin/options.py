"""What `vllm-pin pin` was asked to do, as plain typed values (read by commands/pin.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vllm_pin.index.settings import NO_INDEX, IndexConfig, index_config
from vllm_pin.names import Machine

__all__ = ["IndexOptions", "PinOptions"]


@dataclass(frozen=True)
class IndexOptions:
    """--index-url/--no-index/--extra-index-url/--find-links as given; ``None`` = not given.

    Kept raw because the sources depend on the variant (its own index is the default extra
    index) and because the regenerate command in a file repeats them as spelled.
    """

    index_url: str | None = None
    no_index: bool = False
    extra_index_urls: tuple[str, ...] | None = None
    find_links: tuple[str, ...] | None = None

    def config(self, default_extra_index_urls: Sequence[str] = ()) -> IndexConfig:
        """The sources over the VLLM_PIN_* environment, ``default_extra_index_urls`` last."""
        return index_config(
            NO_INDEX if self.no_index else self.index_url,
            self.extra_index_urls,
            self.find_links,
            default_extra_index_urls=default_extra_index_urls,
        )


@dataclass(frozen=True)
class PinOptions:
    """One `vllm-pin pin` invocation; the defaults are the command's."""

    # what to pin
    vllm: str = "latest"  # exact release, series, or "latest"
    variant: str = "cuda"  # a curated variant's name, checked against the matrix
    machine: Machine = "x86_64"
    torch_build: str = ""  # cu128: the torch family from that PyTorch index ("" = PyPI's)
    allow_yanked: bool = False
    matrix_dir: Path | None = None
    # outputs
    output: str | None = None  # None: requirements-vllm.txt (none at all with a pyproject)
    explain: bool = False
    check: bool = False
    # pyproject.toml extra
    pyproject: Path | None = None
    extra: str = ""
    conflict_with: tuple[str, ...] = ()
    # hashed lock
    lock: bool = False
    lock_output: str = ""
    python_version: str = ""
    python_platform: str = ""
    without: tuple[str, ...] = ()
    exclude_newer: str = ""
    exclude_newer_package: tuple[str, ...] = ()
    timeout: float = 600.0
    offline: bool = False
    index: IndexOptions = field(default_factory=IndexOptions)
    # envs/
    all: bool = False
    only: tuple[str, ...] = ()
    envs_dir: Path = Path("envs")
    no_lock: bool = False
    relock: bool = False
    jobs: int = 4
