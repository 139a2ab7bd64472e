"""Text → typed-AST nodes for the plan DSL (ENGINE.md §2), with precise syntax errors.

The lark LALR grammar (grammar.lark) is deliberately a little wider than the language
(exponent notation, upper-case names, chained comparisons, any call name) so that this
module can reject those with a message saying what is wrong and how to write it instead.
Nothing here, or anywhere in the engine, hands text to Python's eval/exec/compile.
"""

from __future__ import annotations

import difflib
import re
from decimal import Decimal
from functools import cache
from importlib import resources

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from engine.catalog import CATALOG
from engine.dsl.ast import (
    Binary,
    Boolean,
    Call,
    If,
    Name,
    Node,
    Number,
    Pos,
    String,
    Unary,
    children,
)
from engine.dsl.errors import DslSyntaxError

MAX_DECIMALS = 10
MAX_EXPONENT = 64
MAX_LENGTH = 10_000  # characters in one expression
MAX_DEPTH = 200  # nesting of the tree; keeps every recursive tree walk far from the stack limit
VALUE_LIMIT = Decimal(10) ** 28
KEYWORDS = frozenset({"if", "then", "else", "true", "false"})
NAME_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# Words from general-purpose languages that never belong in a plan expression, with the
# reason shown to the author.
FORBIDDEN_WORDS = {
    "lambda": "lambdas are not allowed",
    "import": "statements ('import') are not allowed: a step is a single expression",
    "from": "statements ('from') are not allowed: a step is a single expression",
    "def": "definitions ('def') are not allowed: a step is a single expression",
    "class": "definitions ('class') are not allowed: a step is a single expression",
    "return": "statements ('return') are not allowed: a step is a single expression",
    "for": "loops ('for') are not allowed: a step is a single expression",
    "while": "loops ('while') are not allowed: a step is a single expression",
    "del": "statements ('del') are not allowed: a step is a single expression",
    "global": "statements ('global') are not allowed: a step is a single expression",
    "and": "use '&&' for logical and",
    "or": "use '||' for logical or",
    "is": "use '==' to compare",
    "in": "'in' is not supported; compare with '==' and combine with '||'",
}

CHARACTER_HINTS = {
    ".": "attribute access ('.') is not allowed; decimal numbers are written like 0.5",
    "[": "subscripts ('[...]') are not allowed",
    "]": "subscripts ('[...]') are not allowed",
    "=": "assignment ('=') is not allowed; use '==' to compare",
    ";": "statements (';') are not allowed: a step is a single expression",
    ":": "':' is not allowed (no lambdas, slices or dictionaries)",
    "#": "comments are not allowed",
    "'": 'text is written in double quotes, like "analyst"',
    '"': "unterminated text: a closing double quote is missing (no escapes, no line breaks)",
    "!": "'!' is not an operator; use not(x) or '!='",
    "&": "use '&&' for logical and",
    "|": "use '||' for logical or",
    "{": "braces are not allowed",
    "}": "braces are not allowed",
}


class _BuildError(Exception):
    """Raised inside the tree builder; `parse` turns it into a DslSyntaxError."""

    def __init__(self, message: str, line: int, column: int, code: str = "syntax") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line
        self.column = column


def _pos(token: Token) -> Pos:
    return Pos(token.line, token.column)


def check_name(ident: str, line: int, column: int) -> None:
    """Reject identifiers outside `[a-z_][a-z0-9_]{0,62}`, dunders and forbidden words."""
    if ident.startswith("__"):
        raise _BuildError(f"names starting with '__' are not allowed: '{ident}'", line, column)
    if ident in ("True", "False"):
        raise _BuildError(
            f"'{ident}' is not a name; booleans are written true / false", line, column
        )
    if ident != ident.lower():
        raise _BuildError(f"names are lower case: '{ident}' (try '{ident.lower()}')", line, column)
    if len(ident) > 63:
        raise _BuildError(f"name '{ident[:20]}...' is longer than 63 characters", line, column)
    if not NAME_PATTERN.fullmatch(ident):
        raise _BuildError(f"'{ident}' is not a valid name", line, column)
    if ident in FORBIDDEN_WORDS:
        raise _BuildError(FORBIDDEN_WORDS[ident], line, column)


def suggest(word: str, candidates) -> str:
    """A ' did you mean ...?' suffix naming the closest candidate, or ''."""
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def parse_number(token: Token) -> Number:
    """A NUMBER token as an exact Decimal literal: no exponent, at most 10 decimals."""
    text = str(token)
    line, column = token.line, token.column
    if "e" in text.lower():
        raise _BuildError(
            f"exponent notation is not allowed: '{text}'; write the number out", line, column
        )
    decimals = len(text.split(".", 1)[1]) if "." in text else 0
    if decimals > MAX_DECIMALS:
        raise _BuildError(
            f"number '{text}' has {decimals} decimal places; at most 10 decimal places allowed",
            line,
            column,
            "literal_scale",
        )
    value = Decimal(text)
    if value >= VALUE_LIMIT:
        raise _BuildError(
            f"number '{text}' is too large (must be below 1e28)", line, column, "literal_range"
        )
    return Number(value, pos=Pos(line, column))


class _AstBuilder(Transformer):
    """Turns the lark parse tree into engine.dsl.ast nodes (run inline by the LALR parser)."""

    def number(self, children):
        return parse_number(children[0])

    def string(self, children):
        token = children[0]
        return String(str(token)[1:-1], pos=_pos(token))

    def true(self, children):
        return Boolean(True, pos=_pos(children[0]))

    def false(self, children):
        return Boolean(False, pos=_pos(children[0]))

    def name(self, children):
        token = children[0]
        ident = str(token)
        check_name(ident, token.line, token.column)
        if ident in CATALOG:
            raise _BuildError(
                f"'{ident}' is a function; call it as {ident}(...)", token.line, token.column
            )
        return Name(ident, pos=_pos(token))

    def call(self, children):
        token, *args = children
        ident = str(token)
        check_name(ident, token.line, token.column)
        if ident not in CATALOG:
            raise _BuildError(
                f"unknown function '{ident}'{suggest(ident, CATALOG)}", token.line, token.column
            )
        return Call(ident, tuple(args), pos=_pos(token))

    def if_(self, children):
        if_token, cond, _then, then, _else, else_ = children
        return If(cond, then, else_, pos=_pos(if_token))

    def unary(self, children):
        op, operand = children
        return Unary(str(op), operand, pos=_pos(op))

    def binary(self, children):
        left, op, right = children
        return Binary(str(op), left, right, pos=left.pos)

    def compare(self, children):
        if len(children) > 3:
            op = children[3]
            raise _BuildError(
                f"comparisons cannot be chained ('{children[1]}' then '{op}'); "
                "combine them with '&&', like a < b && b < c",
                op.line,
                op.column,
            )
        left, op, right = children
        return Binary(str(op), left, right, pos=left.pos)

    def power(self, children):
        base, _op, exponent = children
        if not (
            isinstance(exponent, Number)
            and exponent.value == exponent.value.to_integral()
            and 0 <= exponent.value <= MAX_EXPONENT
        ):
            raise _BuildError(
                "the exponent of '^' must be a whole-number literal from 0 to 64",
                exponent.pos.line,
                exponent.pos.column,
            )
        return Binary(
            "^", base, Number(Decimal(int(exponent.value)), pos=exponent.pos), pos=base.pos
        )


@cache
def _lark() -> Lark:
    grammar = resources.files("engine.dsl").joinpath("grammar.lark").read_text()
    return Lark(
        grammar,
        parser="lalr",
        transformer=_AstBuilder(),
        maybe_placeholders=False,
        propagate_positions=False,
    )


def parse(text: str) -> Node:
    """Parse one DSL expression. Raises DslSyntaxError with line, column and excerpt."""
    if not isinstance(text, str):
        raise TypeError("DSL source must be text")
    if not text.strip():
        raise DslSyntaxError.at(text, "empty expression", 1, 1)
    if len(text) > MAX_LENGTH:
        raise DslSyntaxError.at(text, f"expression is longer than {MAX_LENGTH} characters", 1, 1)
    try:
        tree = _lark().parse(text)
    except _BuildError as error:
        raise DslSyntaxError.at(text, error.message, error.line, error.column, error.code) from None
    except UnexpectedInput as error:
        message, line, column = _describe(text, error)
        raise DslSyntaxError.at(text, message, line, column) from None
    _check_depth(text, tree)
    return tree


def _check_depth(text: str, tree: Node) -> None:
    """Reject trees nested deeper than MAX_DEPTH (measured without recursion)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise DslSyntaxError.at(
                text,
                f"expression is nested too deeply (more than {MAX_DEPTH} levels); "
                "split it into several steps",
                node.pos.line,
                node.pos.column,
            )
        stack.extend((child, depth + 1) for child in children(node))


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def _describe(text: str, error: UnexpectedInput) -> tuple[str, int, int]:
    """Message and position for a lark parse failure."""
    if isinstance(error, UnexpectedCharacters):
        char = text[error.pos_in_stream]
        hint = CHARACTER_HINTS.get(char, f"unexpected character '{char}'")
        return hint, error.line, error.column
    if isinstance(error, UnexpectedEOF):
        return "unexpected end of expression", *_end_position(text)
    assert isinstance(error, UnexpectedToken)
    token = error.token
    history = getattr(error, "token_history", None) or []
    previous = history[-1] if history else None
    for candidate in (previous, token):
        if candidate is not None and candidate.type == "NAME" and str(candidate) in FORBIDDEN_WORDS:
            return FORBIDDEN_WORDS[str(candidate)], candidate.line, candidate.column
    if previous is not None and previous.type == "NAME" and str(previous) in CATALOG:
        return (
            f"'{previous}' is a function; call it with parentheses: {previous}(...)",
            previous.line,
            previous.column,
        )
    if token.type == "$END":
        return "unexpected end of expression" + _expected(error), *_end_position(text)
    if token.type == "NAME" and previous is not None and previous.type == "NUMBER":
        return (
            f"unexpected '{token}' right after the number '{previous}'",
            token.line,
            token.column,
        )
    return f"unexpected '{token}'" + _expected(error), token.line, token.column


_TERMINAL_TEXT = {
    "RPAR": "')'",
    "LPAR": "'('",
    "COMMA": "','",
    "THEN": "'then'",
    "ELSE": "'else'",
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "text",
    "OR": "'||'",
    "AND": "'&&'",
    "CMP_OP": "a comparison",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*', '/' or '%'",
    "POW": "'^'",
    "IF": "'if'",
    "TRUE": "'true'",
    "FALSE": "'false'",
}


def _expected(error: UnexpectedToken) -> str:
    wanted = sorted({_TERMINAL_TEXT[t] for t in error.expected if t in _TERMINAL_TEXT})
    if not wanted or len(wanted) > 4:
        return ""
    return "; expected " + " or ".join(wanted)
