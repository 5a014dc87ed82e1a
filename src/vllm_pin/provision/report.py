"""A provision's report: each step's time, the overall result, and the one-screen summary.

Build, verify and smoke each return one entry of the report (a status and its seconds);
the summary is what `vllm-pin provision` prints of it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any


def seconds_since(start: float) -> float:
    """Seconds since a ``time.perf_counter()`` reading, as each report entry records them."""
    return round(time.perf_counter() - start, 3)


def overall_result(verify: Mapping[str, Any], smoke: Mapping[str, Any]) -> str:
    """failed beats incomplete beats passed; verify problems fail the environment."""
    if verify["status"] != "passed" or smoke.get("result") == "failed":
        return "failed"
    return "passed" if smoke.get("result") == "passed" else "incomplete"


def summary(report: Mapping[str, Any]) -> str:
    """One screen: versions, each check's result and time, the generated token ids."""
    rule = report["rule"] if len(report["rule"]) <= 60 else report["rule"][:57] + "..."
    lines = [
        f"{report['session']}: {report['distribution']} {report['release']} ({rule})",
        f"  python   {report['python']['minor']}  {report['python']['path']}",
    ]
    smoke = report.get("smoke", {})
    versions = smoke.get("versions", {})
    if versions:
        lines.append("  versions " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    build = report["build"]
    note = _elide(build.get("error", "lock sha256 " + build["lock_sha256"][:12]), 100)
    lines.append(f"  {'build':<38} {build['status']:<10} {build['seconds']:>7.1f}s  {note}")
    if "verify" in report:
        verify = report["verify"]
        note = _elide(verify.get("error", "") or _verify_note(verify), 100)
        lines.append(f"  {'verify':<38} {verify['status']:<10} {verify['seconds']:>7.1f}s  {note}")
        lines.append(
            f"  {'(time before smoke)':<38} {'':<10} {report['seconds_before_smoke']:>7.1f}s"
        )
    for step in smoke.get("steps", []):
        note = step.get("error") or step.get("reason") or step.get("detail") or ""
        if step["name"] == "generate" and step["status"] == "passed":
            note = (
                f"{step['device']}, attention {step.get('attention_backend') or '?'}, "
                f"cudagraph {step.get('cudagraph_mode') or '?'}"
            )
        lines.append(
            f"  {'smoke: ' + step['name']:<38} {step['status']:<10} "
            f"{step['seconds']:>7.1f}s  {_elide(str(note), 100)}"
        )
    if smoke.get("error"):
        lines.append(f"  smoke: {smoke['error']}")
    generate: Mapping[str, Any] = next(
        (s for s in smoke.get("steps", []) if s["name"] == "generate"), {}
    )
    if generate.get("token_ids"):
        lines.append(f"  token ids {generate['token_ids']}")
    lines.append(f"  result   {report['result'].upper()} in {report['seconds']:.1f}s")
    return "\n".join(lines)


def _elide(text: str, width: int) -> str:
    """Shorten from the middle: error messages say what at the start and where at the end."""
    if len(text) <= width:
        return text
    head = (width - 3) // 2
    return f"{text[:head]}...{text[len(text) - (width - 3 - head) :]}"


def _verify_note(verify: Mapping[str, Any]) -> str:
    """verify's first problem line (its JSON report), or its output when that was not JSON."""
    report = verify.get("report")
    problems = report.get("problems", []) if isinstance(report, dict) else []
    if problems:
        return f"{len(problems)} problem(s): {problems[0].get('line', problems[0])}"
    return str(verify.get("output", "")).splitlines()[-1] if verify.get("output") else ""
