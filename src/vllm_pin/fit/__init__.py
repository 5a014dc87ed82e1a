"""Host fit: which vLLM releases run on a host (driver, GPU archs, glibc, Python, machine).

A pure library over the matrix: :class:`Host` holds the facts, :func:`fit_releases` answers
for every release with reasons and alternatives (all JSON-able through ``to_json``).
Reading the facts of *this* host is :mod:`vllm_pin.fit.host`; no argparse here.
"""

from vllm_pin.fit.core import Alternative, ReleaseFit, fit_releases, newest_fit, series_rows
from vllm_pin.fit.host import Host, detect_host

__all__ = [
    "Alternative",
    "Host",
    "ReleaseFit",
    "detect_host",
    "fit_releases",
    "newest_fit",
    "series_rows",
]
