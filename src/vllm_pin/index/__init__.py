"""Everything that talks to a package index: the PEP 691/658 client, zip range reads, the
wheel reader and the index settings handed to uv. The only network code for data.
"""

__all__ = [
    "pypi",
    "settings",
    "wheels",
    "zipread",
]
