"""Where packages come from: index URL, extra index URLs and find-links, turned into uv arguments.

uv does not read pip's configuration, so mirrors and local wheel directories (the torch ``+cpu``
builds, for instance) must be passed explicitly. Options win over the environment variables
``VLLM_PIN_INDEX_URL``, ``VLLM_PIN_EXTRA_INDEX_URL`` and ``VLLM_PIN_FIND_LINKS``; the last two
hold several entries separated by whitespace, as pip's own variables do.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from vllm_pin.errors import VllmPinError

ENV_INDEX_URL = "VLLM_PIN_INDEX_URL"
ENV_EXTRA_INDEX_URL = "VLLM_PIN_EXTRA_INDEX_URL"
ENV_FIND_LINKS = "VLLM_PIN_FIND_LINKS"


@dataclass(frozen=True)
class IndexConfig:
    """Package sources for uv; empty means uv's default (PyPI)."""

    index_url: str = ""
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()

    def uv_args(self) -> list[str]:
        """Arguments for ``uv pip install|sync|compile``, in a stable order."""
        args: list[str] = []
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        return args

    def lines(self) -> list[str]:
        """The same as requirement-file option lines, which pip and uv both read."""
        args = self.uv_args()
        return [f"{flag} {value}" for flag, value in zip(args[::2], args[1::2])]

    def env(self) -> dict[str, str]:
        """The same configuration as environment variables, to hand to a child process."""
        out: dict[str, str] = {}
        if self.index_url:
            out[ENV_INDEX_URL] = self.index_url
        if self.extra_index_urls:
            out[ENV_EXTRA_INDEX_URL] = " ".join(self.extra_index_urls)
        if self.find_links:
            out[ENV_FIND_LINKS] = " ".join(self.find_links)
        return out


def index_config(
    index_url: str | None = None,
    extra_index_urls: Iterable[str] | None = None,
    find_links: Iterable[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> IndexConfig:
    """Merge options (``None`` = not given) over the environment and validate the result."""
    env = os.environ if environ is None else environ
    config = IndexConfig(
        index_url=(index_url if index_url is not None else env.get(ENV_INDEX_URL, "")).strip(),
        extra_index_urls=_entries(extra_index_urls, env.get(ENV_EXTRA_INDEX_URL, "")),
        find_links=_entries(find_links, env.get(ENV_FIND_LINKS, "")),
    )
    for url in filter(None, (config.index_url, *config.extra_index_urls)):
        if urlparse(url).scheme not in ("http", "https", "file"):
            raise VllmPinError(
                f"index URL {url!r} is not an http(s):// or file:// URL; "
                f"fix --index-url/--extra-index-url or ${ENV_INDEX_URL}/${ENV_EXTRA_INDEX_URL}"
            )
    for link in config.find_links:
        if not urlparse(link).scheme and not Path(link).is_dir():
            raise VllmPinError(
                f"find-links directory {link!r} does not exist; "
                f"fix --find-links or ${ENV_FIND_LINKS}"
            )
    return config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --index-url/--extra-index-url/--find-links so every command spells them alike."""
    parser.add_argument(
        "--index-url", default=None, help=f"package index (default: ${ENV_INDEX_URL} or PyPI)"
    )
    parser.add_argument(
        "--extra-index-url",
        action="append",
        default=None,
        help=f"additional index, repeatable (default: ${ENV_EXTRA_INDEX_URL})",
    )
    parser.add_argument(
        "--find-links",
        action="append",
        default=None,
        help=f"directory or URL of wheels, repeatable (default: ${ENV_FIND_LINKS})",
    )


def from_args(args: argparse.Namespace) -> IndexConfig:
    """The configuration from arguments added by :func:`add_arguments`, over the environment."""
    return index_config(args.index_url, args.extra_index_url, args.find_links)


def _entries(given: Iterable[str] | None, from_env: str) -> tuple[str, ...]:
    """Options as given, else the whitespace-separated environment value; blanks dropped."""
    raw = list(given) if given is not None else from_env.split()
    return tuple(item.strip() for item in raw if item.strip())
