"""The data model: releases.toml, curated.toml, timeline.toml and observations, read by typed
loaders and merged with provenance. No network and no CLI.
"""

__all__ = [
    "cache",
    "core",
    "core_metadata",
    "describe",
    "knowledge",
    "model",
    "observed",
    "paths",
    "releases_file",
    "timeline",
    "toml_emit",
    "tomlfields",
    "vllm_source",
]
