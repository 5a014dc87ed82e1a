"""Index configuration shared by pin, lock and provision: the pieces pin relies on."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from vllm_pin.commands import _options
from vllm_pin.index import settings as indexes
from vllm_pin.index.settings import NO_INDEX, IndexConfig
from vllm_pin.pin.options import IndexOptions

CPU = "https://download.pytorch.org/whl/cpu"


def test_lines_and_uv_args_agree() -> None:
    config = IndexConfig("https://mirror/simple", (CPU,), ("/w",))
    assert config.lines() == [
        "--index-url https://mirror/simple",
        f"--extra-index-url {CPU}",
        "--find-links /w",
    ]
    assert config.uv_args() == [
        "--index-url",
        "https://mirror/simple",
        "--extra-index-url",
        CPU,
        "--find-links",
        "/w",
    ]
    assert IndexConfig(NO_INDEX, find_links=("/a b",)).uv_args() == [
        "--no-index",
        "--find-links",
        "/a b",
    ]


def test_written_drops_find_links_and_queried_skips_stood_in_indexes() -> None:
    config = IndexConfig("", (CPU, "https://other/simple"), ("/w",))
    assert config.written() == IndexConfig("", (CPU, "https://other/simple"))
    assert config.queried([CPU]).extra_index_urls == ("https://other/simple",)
    no_links = IndexConfig("", (CPU,))
    assert no_links.queried([CPU]) == no_links  # nothing stands in: the index is needed


@pytest.mark.parametrize(
    ("extra", "environ", "expected"),
    [
        (None, {}, (CPU,)),  # the default applies when nothing is given
        (["https://m"], {}, ("https://m",)),
        (None, {"VLLM_PIN_EXTRA_INDEX_URL": "https://e"}, ("https://e",)),
        (["none"], {}, ()),  # `none` drops the default
        (None, {"VLLM_PIN_EXTRA_INDEX_URL": "none"}, ()),
    ],
)
def test_default_extra_index(
    extra: list[str] | None, environ: dict[str, str], expected: tuple[str, ...]
) -> None:
    config = indexes.index_config(
        extra_index_urls=extra, environ=environ, default_extra_index_urls=(CPU,)
    )
    assert config.extra_index_urls == expected


@pytest.mark.parametrize("argv", [["--no-index"], ["--index-url", "none"]])
def test_no_index_spellings(argv: list[str], tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    _options.add_index_options(parser)
    args = parser.parse_args([*argv, "--find-links", str(tmp_path)])
    config = _options.index_from(args)
    assert config.uv_args() == ["--no-index", "--find-links", str(tmp_path)]
    assert indexes.index_config(environ=config.env()) == config  # round-trips through env


@pytest.mark.parametrize(
    ("argv", "options"),
    [
        (["--no-index"], IndexOptions(no_index=True)),
        (["--index-url", "none"], IndexOptions(index_url="none")),
        (["--extra-index-url", "https://m"], IndexOptions(extra_index_urls=("https://m",))),
        ([], IndexOptions()),
    ],
)
def test_pin_index_options_read_like_the_shared_options(
    argv: list[str], options: IndexOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pin keeps the raw values (its default index depends on the variant): same config."""
    for var in ("VLLM_PIN_INDEX_URL", "VLLM_PIN_EXTRA_INDEX_URL", "VLLM_PIN_FIND_LINKS"):
        monkeypatch.delenv(var, raising=False)
    parser = argparse.ArgumentParser()
    _options.add_index_options(parser)
    expected = _options.index_from(parser.parse_args(argv), default_extra_index_urls=(CPU,))
    assert options.config(default_extra_index_urls=(CPU,)) == expected
