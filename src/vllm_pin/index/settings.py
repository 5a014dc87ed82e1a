"""Where packages come from: index URL, extra index URLs and find-links, turned into uv arguments.

uv does not read pip's configuration, so mirrors and local wheel directories (the torch ``+cpu``
builds, for instance) must be passed explicitly. Options win over the environment variables
``VLLM_PIN_INDEX_URL``, ``VLLM_PIN_EXTRA_INDEX_URL`` and ``VLLM_PIN_FIND_LINKS``; the last two
hold several entries separated by whitespace, as pip's own variables do. ``none`` means "no
index at all" for the index URL (``--no-index``: find-links only, air-gapped) and "none of
the defaults" for extra index URLs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from vllm_pin.errors import VllmPinError

ENV_INDEX_URL = "VLLM_PIN_INDEX_URL"
ENV_EXTRA_INDEX_URL = "VLLM_PIN_EXTRA_INDEX_URL"
ENV_FIND_LINKS = "VLLM_PIN_FIND_LINKS"
NO_INDEX = "none"
_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s@]+@[^/\s]*")


@dataclass(frozen=True)
class IndexConfig:
    """Package sources for uv; empty means uv's default (PyPI)."""

    index_url: str = ""  # "" = PyPI; NO_INDEX = no index at all, only find-links
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    #: index URLs that came from the environment, not from an option: never written to a file
    from_env: frozenset[str] = field(default=frozenset(), compare=False)

    def lines(self) -> list[str]:
        """Requirement-file option lines, which pip and uv both read, in a stable order."""
        if self.index_url == NO_INDEX:
            out = ["--no-index"]
        else:
            out = [f"--index-url {self.index_url}"] if self.index_url else []
        out += [f"--extra-index-url {url}" for url in self.extra_index_urls]
        return out + [f"--find-links {link}" for link in self.find_links]

    def uv_args(self) -> list[str]:
        """The same as arguments for ``uv pip install|sync|compile``."""
        return [part for line in self.lines() for part in line.split(" ", 1)]

    def written(self) -> IndexConfig:
        """What belongs in a committed file: find-links are local paths that do not travel,
        an index URL from the environment stays out (it may be a private mirror with a
        token), and a password given on the command line is written as ``***``."""
        index = self.index_url
        if index != NO_INDEX:
            index = "" if index in self.from_env else redact(index)
        return replace(
            self,
            index_url=index,
            extra_index_urls=tuple(
                redact(url) for url in self.extra_index_urls if url not in self.from_env
            ),
            find_links=(),
            from_env=frozenset(),
        )

    def queried(self, stood_in_for: Iterable[str]) -> IndexConfig:
        """What uv should query: while find-links are given they stand in for these indexes.

        A wheel directory is the local copy of an index that may be unreachable here (the
        PyTorch CPU index), so that index is written into the files but not queried.
        """
        if not self.find_links:
            return self
        dropped = set(stood_in_for)
        kept = tuple(url for url in self.extra_index_urls if url not in dropped)
        return replace(self, extra_index_urls=kept)

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
    default_extra_index_urls: Sequence[str] = (),
) -> IndexConfig:
    """Merge options (``None`` = not given) over the environment and validate the result.

    ``default_extra_index_urls`` (a variant's own index) apply when neither option nor
    environment names extra indexes; ``none`` among them means none at all.
    """
    env = os.environ if environ is None else environ
    extra = _entries(extra_index_urls, env.get(ENV_EXTRA_INDEX_URL, ""))
    index_from_env = "" if index_url is not None else env.get(ENV_INDEX_URL, "").strip()
    config = IndexConfig(
        index_url=index_url.strip() if index_url is not None else index_from_env,
        extra_index_urls=tuple(
            url for url in (extra or tuple(default_extra_index_urls)) if url != NO_INDEX
        ),
        find_links=_entries(find_links, env.get(ENV_FIND_LINKS, "")),
        from_env=frozenset(
            filter(None, (index_from_env, *(extra if extra_index_urls is None else ())))
        ),
    )
    index = config.index_url if config.index_url != NO_INDEX else ""
    for url in filter(None, (index, *config.extra_index_urls)):
        if urlsplit(url).scheme not in ("http", "https", "file"):
            raise VllmPinError(
                f"index URL {redact(url)!r} is not an http(s):// or file:// URL; "
                f"fix --index-url/--extra-index-url or ${ENV_INDEX_URL}/${ENV_EXTRA_INDEX_URL}"
            )
    for link in config.find_links:
        if not urlsplit(link).scheme and not Path(link).is_dir():
            raise VllmPinError(
                f"find-links directory {link!r} does not exist; "
                f"fix --find-links or ${ENV_FIND_LINKS}"
            )
    return config


def _entries(given: Iterable[str] | None, from_env: str) -> tuple[str, ...]:
    """Options as given, else the whitespace-separated environment value; blanks dropped."""
    raw = list(given) if given is not None else from_env.split()
    return tuple(item.strip() for item in raw if item.strip())


def redact(url: str) -> str:
    """``url`` with its password (or a bare user token) shown as ``***``: safe to print or write.

    ``https://user:token@host/simple/`` -> ``https://user:***@host/simple/``;
    ``https://token@host/`` -> ``https://***@host/``. Anything else comes back unchanged.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    shown = f"{user}:***" if colon else "***"
    return urlunsplit(parts._replace(netloc=f"{shown}@{host}"))


def redact_text(text: str) -> str:
    """Every ``scheme://user:password@`` in free text (an error message, a log) redacted."""
    return _USERINFO.sub(lambda m: redact(m.group(0)), text)


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without its user info, and (user, password) when it had some."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    clean = urlunsplit(parts._replace(netloc=host))
    return clean, (unquote(user), unquote(password))
