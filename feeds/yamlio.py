"""YAML loading with the libyaml C loader when present, no aliases, and Jekyll's leniency."""
from __future__ import annotations

from typing import Any

import yaml

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlProblem(ValueError):
    """A YAML document that cannot be used; ``line`` is 1-based within the given text."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def _reject_aliases(text: str) -> None:
    # Aliases let a small file expand into a huge structure ("billion laughs"); real records
    # never use them, so any alias is refused. The event scan only runs when '*' appears.
    if "*" not in text:
        return
    try:
        for event in yaml.parse(text, Loader=Loader):
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                raise YamlProblem("YAML aliases (*name) are not allowed", mark.line + 1 if mark else None)
    except yaml.YAMLError:
        return  # the loader reports the syntax error with its own position


def load_yaml(text: str, *, first_document_only: bool = False) -> Any:
    """Parse one YAML document.

    ``first_document_only`` mirrors Jekyll for data files: a stray trailing ``---`` starts an
    empty second document that PyYAML's ``safe_load`` refuses; Jekyll reads the first one.
    A second document with content is still an error, since its data would be silently lost.
    """
    _reject_aliases(text)
    try:
        if not first_document_only:
            return yaml.load(text, Loader=Loader)
        docs = list(yaml.load_all(text, Loader=Loader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlProblem(f"invalid YAML: {problem}", mark.line + 1 if mark else None) from None
    if any(d is not None for d in docs[1:]):
        raise YamlProblem("more than one YAML document with content")
    return docs[0] if docs else None
