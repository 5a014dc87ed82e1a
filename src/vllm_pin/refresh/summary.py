"""What a refresh changed, one line per release or package row, for a human to review."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from packaging.version import InvalidVersion, Version

from vllm_pin.matrix.core_metadata import requirement_name
from vllm_pin.names import DISTRIBUTIONS


def summarize(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """One line per release (or package row) that differs between two documents."""
    old = old or {}
    lines = []
    if old.get("meta") != new.get("meta"):
        lines.append(f"~ meta: {old.get('meta')} -> {new.get('meta')}")
    for dist in (*DISTRIBUTIONS, "packages"):
        lines += summarize_table(dist, old.get(dist) or {}, new.get(dist) or {})
    old_a, new_a = old.get("anomalies") or [], new.get("anomalies") or []
    if old_a != new_a:
        added = [a for a in new_a if a not in old_a]
        removed = [a for a in old_a if a not in new_a]
        lines += [f"+ anomaly {a['package']} {a['release']}: {a['what']}" for a in added]
        lines += [f"- anomaly {a['package']} {a['release']}: {a['what']}" for a in removed]
    return lines


def summarize_table(label: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """One line per row of a table keyed by version (`packages`: by "name version")."""
    if label == "packages":
        flat_old = {f"{n} {v}": row for n, rows in old.items() for v, row in rows.items()}
        flat_new = {f"{n} {v}": row for n, rows in new.items() for v, row in rows.items()}
        return summarize_table("package", flat_old, flat_new)
    lines = []
    for key in sorted(set(old) | set(new), key=_summary_key):
        if key not in old:
            lines.append(f"+ {label} {key}: new{_brief(new[key])}")
        elif key not in new:
            lines.append(f"- {label} {key}: gone from the index")
        elif old[key] != new[key]:
            lines.append(f"~ {label} {key}: {', '.join(_changed(old[key], new[key]))}")
    return lines


def _summary_key(key: str) -> tuple[str, Version]:
    name, _, version = key.rpartition(" ")
    try:
        return name, Version(version)
    except InvalidVersion:
        return key, Version("0")


def _brief(entry: Mapping[str, Any]) -> str:
    x86 = (entry.get("platforms") or {}).get("x86_64")
    pins = [p for p in (x86 or {}).get("pins", []) if requirement_name(p) == "torch"]
    return (
        f" ({entry['status']}{', ' + ', '.join(pins) if pins else ''})" if "status" in entry else ""
    )


def _changed(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                out += _changed(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    if isinstance(old, list) or isinstance(new, list) or old is None or new is None:
        return [prefix.rstrip(".")]
    return [f"{prefix.rstrip('.')} {old!r} -> {new!r}"]
