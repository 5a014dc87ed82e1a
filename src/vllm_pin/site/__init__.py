"""The static compatibility site (`vllm-pin site -o DIR`): the matrix as browsable pages.

:mod:`pages` turns the matrix into plain data for each page (no HTML), reusing what the
commands print: ``show``'s description, ``pin``'s requirements text, ``timeline``'s
presence. :mod:`hostfit` precomputes the "Will it run here?" answers as lookup tables.
:mod:`render` writes the pages with Jinja2 (the optional ``[site]`` extra) from the templates
and static files shipped in this package. No network; nothing outside the output directory.
"""

__all__ = ["hostfit", "pages", "render"]
