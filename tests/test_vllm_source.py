"""Static parsers of vLLM source files: every registry shape vLLM shipped, never importing it."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllm_pin.matrix import vllm_source

FIXTURES = Path(__file__).parent / "fixtures" / "vllm_source"


def src(name: str) -> str:
    return (FIXTURES / f"{name}.py.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "envs_annotated",
            {"VLLM_TARGET_DEVICE", "VLLM_ATTENTION_BACKEND", "VLLM_USE_V1", "MAX_JOBS"},
        ),
        (
            "envs_plain_update",
            {"VLLM_HOST_IP", "VLLM_PORT", "VLLM_LOGGING_LEVEL", "VLLM_TRACE_FUNCTION"},
        ),
        (
            "envs_choices",
            {
                "VLLM_WORKER_MULTIPROC_METHOD",
                "VLLM_FLOAT32_MATMUL_PRECISION",
                "VLLM_DISABLED_KERNELS",
                "VLLM_ATTENTION_BACKEND",
                "VLLM_BATCH_INVARIANT",
            },
        ),
    ],
)
def test_env_var_names_every_registry_shape(fixture: str, expected: set[str]) -> None:
    assert vllm_source.env_var_names(src(fixture)) == expected


def test_env_var_names_without_registry_is_empty() -> None:
    # releases before 0.4.2 have no envs.py; a module without the dict yields nothing
    assert vllm_source.env_var_names("import os\nX = {'VLLM_A': 1}\n") == frozenset()


def test_env_var_names_reads_an_installed_file(tmp_path: Path) -> None:
    """The verify engineer's call: env_var_names(Path(site)/'vllm/envs.py').read_text())."""
    site = tmp_path / "site-packages"
    (site / "vllm").mkdir(parents=True)
    (site / vllm_source.ENVS_PY).write_text(src("envs_annotated"), encoding="utf-8")
    names = vllm_source.env_var_names((site / "vllm/envs.py").read_text())
    assert "VLLM_USE_V1" in names


def test_env_var_choices_literal_lists_only() -> None:
    choices = vllm_source.env_var_choices(src("envs_choices"))
    assert choices == {
        "VLLM_WORKER_MULTIPROC_METHOD": frozenset({"spawn", "fork"}),
        "VLLM_FLOAT32_MATMUL_PRECISION": frozenset({"highest", "high", "medium"}),
        "VLLM_DISABLED_KERNELS": frozenset({"a", "b"}),
    }
    assert vllm_source.env_var_choices(src("envs_annotated")) == {}


@pytest.mark.parametrize(
    ("path", "fixture", "expected"),
    [
        (
            "vllm/attention/selector.py",
            "selector_0_4",
            {"FLASH_ATTN", "XFORMERS", "ROCM_FLASH", "TORCH_SDPA"},
        ),
        (
            "vllm/platforms/interface.py",
            "interface_0_10",
            {"FLASH_ATTN", "FLASH_ATTN_VLLM_V1", "XFORMERS", "FLEX_ATTENTION"},
        ),
        (
            "vllm/attention/backends/registry.py",
            "registry_0_11",
            {"FLASH_ATTN", "TRITON_ATTN", "XFORMERS", "FLEX_ATTENTION", "CUSTOM"},
        ),
        (
            "vllm/v1/attention/backends/registry.py",
            "registry_0_11",
            {"FLASH_ATTN", "TRITON_ATTN", "XFORMERS", "FLEX_ATTENTION", "CUSTOM"},
        ),
    ],
)
def test_attention_backends_at_each_historical_path(
    path: str, fixture: str, expected: set[str]
) -> None:
    files = {path: src(fixture)}
    assert vllm_source.find_attention_backends(files)[0] == expected
    assert vllm_source.find_attention_backends(files)[1] == path


def test_attention_backends_newest_path_wins() -> None:
    files = {
        "vllm/attention/selector.py": src("selector_0_4"),
        "vllm/platforms/interface.py": src("interface_0_10"),
    }
    names, path = vllm_source.find_attention_backends(files)
    assert path == "vllm/platforms/interface.py"
    assert "FLEX_ATTENTION" in names and "ROCM_FLASH" not in names


def test_attention_backends_absent() -> None:
    assert vllm_source.find_attention_backends({"vllm/attention/selector.py": "x = 1\n"}) == (
        frozenset(),
        "",
    )


def test_cudagraph_modes() -> None:
    files = {"vllm/config/compilation.py": src("compilation_0_10")}
    assert vllm_source.find_cudagraph_modes(files)[0] == {
        "NONE",
        "PIECEWISE",
        "FULL",
        "FULL_DECODE_ONLY",
        "FULL_AND_PIECEWISE",
    }
    # the same enum inside the old single-module config.py is found too
    assert (
        vllm_source.find_cudagraph_modes({"vllm/config.py": src("compilation_0_10")})[1]
        == "vllm/config.py"
    )
    assert vllm_source.find_cudagraph_modes({"vllm/config.py": "class ModelConfig: pass\n"}) == (
        frozenset(),
        "",
    )


def test_engine_arg_names_are_the_dataclass_fields() -> None:
    assert vllm_source.engine_arg_names(src("arg_utils")) == {
        "model",
        "dtype",
        "enforce_eager",
        "attention_backend",
        "compilation_config",
    }


def test_member_patterns_cover_every_parsed_path() -> None:
    paths = {
        vllm_source.ENVS_PY,
        vllm_source.ENGINE_ARGS_PY,
        *vllm_source.BACKEND_PATHS,
        *vllm_source.CUDAGRAPH_PATHS,
    }
    assert paths == set(vllm_source.MEMBER_PATTERNS)
    assert vllm_source.wanted_member("vllm/envs.py")
    assert not vllm_source.wanted_member("vllm/envs.pyc")
    assert not vllm_source.wanted_member("vllm-0.10.1.1.dist-info/METADATA")


def test_syntax_error_propagates() -> None:
    with pytest.raises(SyntaxError):
        vllm_source.env_var_names("environment_variables = {\n")


@pytest.mark.parametrize(
    "source",
    [
        "environment_variables = {}\nenvironment_variables .update({'VLLM_A': f})\n",
        "environment_variables = {}\nenvironment_variables\\\n    .update({'VLLM_A': f})\n",
        "environment_variables = {}\n(environment_variables  # x\n  .update)({'VLLM_A': f})\n",
        "environment_variables = {}\ndef g():\n    if x:\n"
        "        environment_variables['VLLM_A'] = f\n",
        "environment_variables = {}\nclass K:\n    try:\n        pass\n    finally:\n"
        "        environment_variables['VLLM_A'] = f\n",
    ],
    ids=["blank", "continuation", "comment", "nested-subscript", "finally-subscript"],
)
def test_registry_additions_are_found_however_written(source: str) -> None:
    """The text is searched before the tree is walked: every spelling must still be found."""
    assert vllm_source.env_var_names(source) == {"VLLM_A"}


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("class \\\n    CUDAGraphMode(Enum):\n    NONE = 0\n", True),
        ("from enum import Enum\n\n@unique\nclass CUDAGraphMode(Enum):\n    FULL = 1\n", True),
        ("x = 'class CUDAGraphMode'\nclass CUDAGraphModeX(Enum):\n    A = 1\n", False),
        ("if x:\n    class CUDAGraphMode(Enum):\n        A = 1\n", False),  # not module level
    ],
)
def test_enum_class_found_only_where_defined(source: str, found: bool) -> None:
    modes, path = vllm_source.find_cudagraph_modes({"vllm/config.py": source})
    assert bool(modes) is found
    assert path == ("vllm/config.py" if found else "")


@pytest.mark.parametrize(
    ("source", "members"),
    [
        ("class CUDAGraphMode(Enum):\n    NONE = 0\n    FULL = 1\nx = 1\n", {"NONE", "FULL"}),
        # the class's text alone is cut inside brackets, a string, a continued line: all parse
        # as the whole module does
        ("class CUDAGraphMode(Enum):\n    NONE = 0\n    FULL = (\n1)\nB = 2\n", {"NONE", "FULL"}),
        ('class CUDAGraphMode(Enum):\n    """\nB = 9\n"""\n    NONE = 0\n', {"NONE"}),
        ("class CUDAGraphMode(Enum):\n    NONE = \\\n1\n", {"NONE"}),
        # two definitions: the first with members, as when the whole module was walked
        ("class CUDAGraphMode:\n    pass\nclass CUDAGraphMode(Enum):\n    A = 1\n", {"A"}),
        # a line that only looks like the class is inside a string: the whole module decides
        (
            'x = """\nclass CUDAGraphMode:\n    A = 1\n"""\n'
            "class CUDAGraphMode(Enum):\n    B = 2\n",
            {"B"},
        ),
    ],
    ids=["cut", "brackets", "string", "continuation", "twice", "in-a-string"],
)
def test_class_read_alone_or_with_its_module_alike(source: str, members: set[str]) -> None:
    assert vllm_source.find_cudagraph_modes({"vllm/config.py": source})[0] == members


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ("    a: int = 1\n    b: str = ''\n    def f(self):\n        c: int = 2\n", {"a", "b"}),
        # read past the first method: a field after it, in any spelling
        ("    a: int = 1\n    def f(self):\n        pass\n    b: int = 2\n", {"a", "b"}),
        (
            "    a: int = 1\n    @property\n    def f(self):\n        pass\n    (b): int\n",
            {"a", "b"},
        ),
        ("    a: int = 1\n    class K:\n        x: int\n    b : int\n", {"a", "b"}),
        (
            "    a: int\n    async def f(self):\n        pass\n    \u00e9t\u00e9: int\n",
            {"a", "\u00e9t\u00e9"},
        ),
        # text that only looks like a field, in a docstring: read whole, the same answer
        ('    a: int\n    def f(self):\n        """\n    b: not a field\n"""\n', {"a"}),
        ("\ta: int\n\tdef f(self):\n\t\tpass\n", {"a"}),
        # a method first: nothing before it parses alone
        ("    def f(self):\n        pass\n    a: int\n", {"a"}),
    ],
    ids=[
        "fields-first",
        "after",
        "decorated",
        "nested-class",
        "async",
        "docstring",
        "tabs",
        "method-first",
    ],
)
def test_fields_read_before_the_methods_or_with_them_alike(body: str, fields: set[str]) -> None:
    source = f"import x\n\n@dataclass\nclass EngineArgs:\n{body}\ndef g():\n    pass\n"
    assert vllm_source.engine_arg_names(source) == fields


def test_every_member_read_is_an_ascii_path() -> None:
    """A central directory's names are matched against these undecoded, as ASCII bytes."""
    assert all(path.isascii() for path in vllm_source.MEMBER_PATTERNS)
