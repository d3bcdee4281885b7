"""A Griffe extension for the API reference (mkdocs.yml, mkdocstrings): the package's docstrings
are written for ``help()`` and Sphinx, with roles such as :func:`load_rules`; Markdown shows them
as inline code instead, and drops the reStructuredText ``::`` that opens a literal block (the
indented block after it is already code in Markdown)."""

import re

from griffe import Extension

ROLE = re.compile(r":(?:func|meth|class|attr|mod|data|exc|obj):`~?\.?([^`]+)`")


def markdown_of(text: str) -> str:
    text = ROLE.sub(r"`\1`", text)
    text = re.sub(r"(?m)^\s*::\s*$", "", text)  # a "::" paragraph of its own
    return re.sub(r"(?m)::$", ":", text)  # "text::" ends a sentence with one colon


class RstRoles(Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_of(obj.docstring.value)
