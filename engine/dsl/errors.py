"""The one error type of the DSL parser, with a position a plan author can act on."""

from __future__ import annotations


def caret_excerpt(text: str, line: int, column: int) -> str:
    """The source line at `line` with a caret under `column` (both 1-based)."""
    lines = text.split("\n")
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    source_line = source_line.replace("\t", " ").rstrip("\r")
    caret_column = max(1, min(column, len(source_line) + 1))
    return f"{source_line}\n{' ' * (caret_column - 1)}^"


class DslSyntaxError(ValueError):
    """A DSL expression that cannot be parsed, or uses syntax the DSL forbids.

    `line` and `column` are 1-based; `excerpt` is the offending source line with a caret
    under the column. `code` is "syntax", or "literal_scale" / "literal_range" for a number
    literal with more than 10 decimals / at or above 1e28.
    `str()` shows message, position and excerpt together.
    """

    def __init__(
        self, message: str, line: int, column: int, excerpt: str, code: str = "syntax"
    ) -> None:
        self.message = message
        self.code = code
        self.line = line
        self.column = column
        self.excerpt = excerpt
        super().__init__(str(self))

    @classmethod
    def at(
        cls, text: str, message: str, line: int, column: int, code: str = "syntax"
    ) -> DslSyntaxError:
        return cls(message, line, column, caret_excerpt(text, line, column), code)

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}\n{self.excerpt}"
