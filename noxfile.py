"""nox sessions: lint, tests, and one provision session per environment in the matrix.

    nox -l                          # every session, with the release each provision one builds
    nox -s provision-0.10           # build .envs/0.10 with uv, verify it, smoke-test it
    nox -s provision -- 0.10.1.1    # an exact release (or VLLM_PIN_RELEASE=0.10.1.1)
    nox -t ci                       # CI: lint, pin-check, tests, verify-seed004,
                                    #     provision-<latest>-cpu, provision-0.10

Sessions run in the interpreter that runs nox (python=False): it must have vllm-pin installed
with its dev extras (``pip install -e '.[dev]'``). Index settings come from the environment
(VLLM_PIN_INDEX_URL, VLLM_PIN_EXTRA_INDEX_URL, VLLM_PIN_FIND_LINKS) or after ``--``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src"))  # the checkout's code, even if an older copy is installed

from vllm_pin.errors import VllmPinError  # noqa: E402
from vllm_pin.matrix.model import series_of  # noqa: E402
from vllm_pin.matrix.observed import load_observations  # noqa: E402
from vllm_pin.provision import envs as provision_envs  # noqa: E402

nox.options.sessions = ["lint", "tests"]
nox.options.error_on_missing_interpreters = True


def _provision(session: nox.Session, *args: str) -> None:
    session.run(sys.executable, "-m", "vllm_pin", "provision", "--root", str(ROOT), *args)


@nox.session(python=False, tags=["ci"])
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check and mypy --strict over the project."""
    session.run(sys.executable, "-m", "ruff", "check", ".")
    session.run(sys.executable, "-m", "ruff", "format", "--check", ".")
    session.run(sys.executable, "-m", "mypy")


@nox.session(python=False, tags=["ci"])
def tests(session: nox.Session) -> None:
    """pytest: offline and network unit tests (builds no vLLM env); exit 5 (none ran) fails."""
    session.run(sys.executable, "-m", "pytest", "-m", "not provision", *session.posargs)


@nox.session(name="pin-check", python=False, tags=["ci"])
def pin_check(session: nox.Session) -> None:
    """Fail when envs/ is stale against the matrix (offline)."""
    session.run(sys.executable, "-m", "vllm_pin", "pin", "--all", "--check", *session.posargs)


@nox.session(python=False, default=False, tags=["pin"])
def pin(session: nox.Session) -> None:
    """Regenerate envs/: requirements, env.toml and hashed locks (uses the network)."""
    session.run(sys.executable, "-m", "vllm_pin", "pin", "--all", *session.posargs)


@nox.session(name="verify-seed004", python=False, default=False, tags=["ci", "provision"])
def verify_seed004(session: nox.Session) -> None:
    """verify on real broken venvs: torch 2.2.0 under vllm 0.10.1.1 (seed 004), +cpu mixes."""
    session.run(sys.executable, "-m", "pytest", "-m", "provision", "tests/test_verify_provision.py")


@nox.session(name="provision", python=False, default=False, tags=["provision"])
def provision_release(session: nox.Session) -> None:
    """Provision an exact release: nox -s provision -- 0.10.1.1 [--variant cpu]."""
    _provision(session, *session.posargs)


def _selected_by_accident(session: nox.Session) -> str:
    """Why this session runs although `-s` did not name it, or "" when it was named.

    nox also matches `-s` names parsed as Python expressions, and `provision-0.10` and
    `provision-0.1` both read as `provision - 0.1`: asking for one would run both.
    """
    config = getattr(getattr(session, "_runner", None), "global_config", None)
    named = list(getattr(config, "sessions", None) or [])
    if not named or session.name in named:
        return ""
    return f"not requested: nox took {', '.join(named)} to mean {session.name} too"


def _register(spec: provision_envs.EnvSpec) -> None:
    """One `provision-<name>` session; nox lists the docstring, which names the release."""

    def session_func(session: nox.Session) -> None:
        accident = _selected_by_accident(session)
        if accident:
            session.skip(accident)
        _provision(session, spec.name, "--variant", spec.variant, *session.posargs)

    session_func.__doc__ = f"Build, verify and smoke-test {spec.description}"
    decorate = nox.session(name=spec.session, python=False, default=False, tags=list(spec.tags))
    decorate(session_func)


try:
    for _spec in provision_envs.env_specs(ROOT):
        _register(_spec)
except VllmPinError as exc:  # a broken matrix must not hide lint/tests
    print(f"noxfile: no provision sessions: {exc}", file=sys.stderr)


def _register_sweep(spec: provision_envs.EnvSpec) -> None:
    """One `gpu-sweep-<series>` session: provision the env, then sweep it on this GPU."""

    def session_func(session: nox.Session) -> None:
        _provision(session, spec.name, "--variant", spec.variant)
        python = ROOT / provision_envs.BUILD_DIR / spec.name / "bin" / "python"
        session.run(
            str(python),
            "-m",
            "vllm_pin",
            "gpu-sweep",
            "--work-dir",
            str(ROOT / provision_envs.BUILD_DIR / f"gpu-sweep-{spec.name}"),
            "--jobs",
            "8",
            "--repeat",
            "FLASH_ATTN+FULL",
            "--write",
            *session.posargs,
            env={"PYTHONPATH": str(ROOT / "src")},
        )

    session_func.__doc__ = (
        f"Sweep attention backends x cudagraph modes of {spec.release} on this GPU"
    )
    nox.session(name=f"gpu-sweep-{spec.name}", python=False, default=False, tags=["gpu"])(
        session_func
    )


try:
    _swept = {series_of(v) for v in load_observations().releases()}
    for _spec in provision_envs.env_specs(ROOT):
        if _spec.variant == "cuda" and series_of(_spec.release) in _swept:
            _register_sweep(_spec)
except VllmPinError as exc:
    print(f"noxfile: no gpu-sweep sessions: {exc}", file=sys.stderr)
