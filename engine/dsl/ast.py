"""The typed AST of the plan DSL: the one tree every backend consumes.

The parser builds these nodes; `engine.check` fills in `type` on every node (and rejects
plans it cannot type). Backends (reference, Polars, Excel) pattern-match on the node
classes below and never look at source text again. Nodes are plain dataclasses compared by
value, so two parses of the same text give equal trees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum


class Type(StrEnum):
    """Static types of DSL values (ENGINE.md §3). `int` inputs load as DECIMAL."""

    DECIMAL = "decimal"
    BOOL = "bool"
    TEXT = "text"
    DATE = "date"


@dataclass(frozen=True, slots=True)
class Pos:
    """1-based line and column of a node's first character in its source text."""

    line: int
    column: int


@dataclass(eq=True, slots=True)
class Node:
    """Base class. `type` is None until `engine.check` has typed the tree."""

    pos: Pos = field(compare=False, kw_only=True, default=Pos(1, 1))
    type: Type | None = field(compare=False, kw_only=True, default=None)


@dataclass(eq=True, slots=True)
class Number(Node):
    """A decimal literal; `value` is exact with at most 10 decimal places."""

    value: Decimal


@dataclass(eq=True, slots=True)
class String(Node):
    value: str


@dataclass(eq=True, slots=True)
class Boolean(Node):
    value: bool


@dataclass(eq=True, slots=True)
class DateLiteral(Node):
    """Not produced by the grammar; used for step defaults of type date."""

    value: date


@dataclass(eq=True, slots=True)
class Name(Node):
    """A reference to an input, a parameter, a step, or `employee_ref` / `fund_ref`."""

    ident: str


# Operator spellings used in `Unary.op` and `Binary.op`.
UNARY_OPS = ("-", "+")
ARITHMETIC_OPS = ("+", "-", "*", "/", "%", "^")
COMPARISON_OPS = ("==", "!=", "<", "<=", ">", ">=")
LOGICAL_OPS = ("&&", "||")


@dataclass(eq=True, slots=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(eq=True, slots=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(eq=True, slots=True)
class Call(Node):
    """A catalog function call; `func` is always a catalog name (checked by the parser)."""

    func: str
    args: tuple[Node, ...]


@dataclass(eq=True, slots=True)
class If(Node):
    cond: Node
    then: Node
    else_: Node


Expr = Number | String | Boolean | DateLiteral | Name | Unary | Binary | Call | If


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of a node, in source order."""
    match node:
        case Unary(operand=operand):
            return (operand,)
        case Binary(left=left, right=right):
            return (left, right)
        case Call(args=args):
            return args
        case If(cond=cond, then=then, else_=else_):
            return (cond, then, else_)
        case _:
            return ()


def walk(node: Node):
    """Yield the node and all its descendants, depth first, in source order."""
    yield node
    for child in children(node):
        yield from walk(child)


def names(node: Node) -> set[str]:
    """Every identifier a expression reads."""
    return {n.ident for n in walk(node) if isinstance(n, Name)}
