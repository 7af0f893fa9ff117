"""A griffe extension for the docs: numpydoc as scikit-learn writes it, in Markdown.

Two differences between numpydoc as rendered by Sphinx and griffe's parser:

- Sphinx roles such as ``:class:`~autoclr.Bounds``` or
  ``:func:`autoclr.plot_range_test``` would show up verbatim in Markdown; they
  become inline code (``Bounds``, ``autoclr.plot_range_test``), keeping only
  the last name when the target starts with ``~``, as Sphinx does.
- ``policy : {"a", "b"}, default="b"`` (scikit-learn's style): griffe takes
  the first choice of a ``{...}`` set as the default and ignores the
  ``default=`` after it. The set is rewritten as ``"a" | "b"`` so that the
  stated default is the one shown.
"""

import re

from griffe import Extension

CHOICES_WITH_DEFAULT = re.compile(r"^(\s*[\w, ]+ : )\{([^}]*)\}(, default\b.*)$", re.M)
ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|obj|data|exc|const):`(~?)([^`]+)`")


def _code(match):
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


def _choices(match):
    options = " | ".join(option.strip() for option in match.group(2).split(","))
    return f"{match.group(1)}{options}{match.group(3)}"


class NumpydocForMarkdown(Extension):
    """Rewrite Sphinx roles and ``{...}, default=`` types for griffe's numpy parser."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            text = ROLE.sub(_code, obj.docstring.value)
            obj.docstring.value = CHOICES_WITH_DEFAULT.sub(_choices, text)
