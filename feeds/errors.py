"""The domain's error types: one for bad input files, one for bad query parameters."""
from __future__ import annotations


class RecordError(Exception):
    """A content file that cannot be imported; carries where and why."""

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason
        self.line = line

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"


class QueryError(ValueError):
    """An invalid feed/API parameter; the message names the parameter and the value."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class UnknownFeed(LookupError):
    """A topic or provider that does not exist; ``suggestions`` are close matches."""

    def __init__(self, kind: str, key: str, suggestions: list[str]) -> None:
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"no {kind} '{key}'{hint}")
        self.kind, self.key, self.suggestions = kind, key, suggestions
