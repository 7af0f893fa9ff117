"""A griffe extension for the docs: render numpydoc's Sphinx roles as code.

The docstrings follow numpydoc and use Sphinx roles such as
``:class:`~autoclr.Bounds``` or ``:func:`autoclr.plot_range_test```;
mkdocstrings renders Markdown, where these would show up verbatim. This turns
each role into inline code (``Bounds``, ``autoclr.plot_range_test``), keeping
only the last name when the target starts with ``~`` as Sphinx does.
"""

import re

from griffe import Extension

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|obj|data|exc|const):`(~?)([^`]+)`")


def _code(match):
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


class RstRoles(Extension):
    """Replace Sphinx cross-reference roles in docstrings by inline code."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_code, obj.docstring.value)
