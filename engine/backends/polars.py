"""The vectorised backend: the typed AST compiled to Polars expressions over Decimal(38,10).

Every step becomes one column of a lazy frame; sub-expressions read more than once are
materialised as temporary columns, and all columns that can be computed together go into
one `with_columns` stage (so a plan costs one stage per dependency level of its expression
DAG). Results, diagnostics and overflow errors are exactly the reference backend's
(ENGINE.md §4-§6, docs/engine.md "Semantics decided beyond ENGINE.md").

How R10 is met (docs/engine.md "How R10 is implemented in Polars"):
- Polars 2.1 keeps Decimal(38,10) at scale 10 through `+ - * / %`, rounds `*`, `/`, `round`
  and casts half to even, and its `%` is floored: exactly R10 while nothing overflows.
- But a native Decimal operation whose result does not fit raises for the WHOLE column,
  even on rows whose result is never used, and `*` raises already for products in
  (MAX, MAX + 0.5e-10) that R10 rounds down to MAX. So evaluation first runs in *fast mode*
  (native operations only). If Polars reports a decimal overflow anywhere, the plan is
  re-run in *exact mode*: products are computed on the Int128 physical values split into
  19-digit limbs (UInt128, never wrapping), sums on 20-digit limbs, and every other
  operation sees operands zeroed on the rows where it would overflow. Overflow masks are
  then recorded on taken rows only, and the first one raises `ValueOverflow`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

import polars as pl

from engine.backends.base import (
    DIAGNOSTIC_DTYPE,
    DIAGNOSTIC_MESSAGES,
    DIVISION_BY_ZERO,
    INVALID_PERIOD,
    NEGATIVE_WEIGHT,
    NULL_PAYOUT,
    POLARS_TYPES,
    POOL_NOT_CONSTANT,
    EvalResult,
    ValueOverflow,
    null_payout_message,
)
from engine.catalog import CATALOG
from engine.dsl.ast import (
    Binary,
    Boolean,
    Call,
    DateLiteral,
    If,
    Name,
    Node,
    Number,
    String,
    Unary,
    walk,
)
from engine.dsl.ast import Type as T
from engine.plan import CompiledPlan, CompiledStep, coerce_value

DEC = pl.Decimal(38, 10)
WHOLE = pl.Decimal(38, 0)
I128 = pl.Int128
U128 = pl.UInt128
MAX_SCALED = 10**38 - 1
"""The largest |value| in scaled (x 1e10) units: 9999999999999999999999999999.9999999999."""
CENT_SCALED = 10**8
EPOCH = date(1970, 1, 1)
"""Day 0 of Polars' Date physical value."""
_DIAGNOSTIC_STRUCT = DIAGNOSTIC_DTYPE.inner


def dec(value: Decimal | int | str) -> pl.Expr:
    """A Decimal(38,10) literal with an explicit dtype (never a float)."""
    return pl.lit(Decimal(value), dtype=DEC)


def whole(value: Decimal | int) -> pl.Expr:
    """A whole-number literal as Decimal(38,0): Polars multiplies or divides a Decimal(38,10)
    by it without its 256-bit rescale, and the result is the same exact Decimal(38,10)."""
    return pl.lit(value, dtype=WHOLE)


def i128(value: int) -> pl.Expr:
    return pl.lit(value, dtype=I128)


def u128(value: int) -> pl.Expr:
    return pl.lit(value, dtype=U128)


def from_scaled(scaled: pl.Expr) -> pl.Expr:
    """An Int128 count of 1e-10 units as Decimal(38,10), exactly (|scaled| < 1e38)."""
    return scaled.cast(WHOLE) * dec("0.0000000001")


ZERO = dec(0)
ONE = dec(1)


def zero_where(value: pl.Expr, flag: pl.Expr) -> pl.Expr:
    """`value`, or 0 where `flag` holds; arithmetic (x - x * flag) rather than when/then,
    which Polars 2.1 may evaluate eagerly on a literal `value` and overflow on."""
    return value - value * flag.cast(pl.Int64).cast(DEC)


@dataclass(frozen=True)
class Val:
    """A compiled expression and the first stage in which it can be computed.

    `const` marks a literal whose Python `value` is known at compile time (None: null), so
    the compiler can leave out work that cannot matter for it (a zero test on a non-zero
    divisor, a null test on a non-null literal, the untaken side of a constant `if`).
    `nullable` False promises that no row is null (an input column without nulls in this
    frame, a non-null literal, arithmetic on such values), so null tests can be left out.
    `uniform` names the partitions (see Compiler.partition) within each of whose groups the
    value is the same on every row (a keyed aggregate, and row-wise functions of such values
    and literals; EVERYWHERE for a literal): a guard that is uniform over an aggregate's
    partition takes whole groups, so the aggregate need not mask its rows."""

    expr: pl.Expr
    level: int
    simple: bool = False
    const: bool = False
    value: Any = None
    nullable: bool = True
    uniform: frozenset[str] = frozenset()


EVERYWHERE = frozenset({"*"})
"""`Val.uniform` of a value that is the same on every row of the frame."""


def _uniform(*vals: Val | None) -> frozenset[str]:
    """The partitions a row-wise function of `vals` is uniform over (None: every row)."""
    result = EVERYWHERE
    for val in vals:
        if val is None or val.const or val.uniform == EVERYWHERE:
            continue
        result = val.uniform if result == EVERYWHERE else result & val.uniform
    return result


def _groupwise(taken: Mask, part: Val | None) -> bool:
    """Whether `taken` takes whole groups of `part` (every row of a group, or none)."""
    if taken is None:
        return True
    if part is None or part.const:
        return taken.uniform == EVERYWHERE
    return taken.uniform == EVERYWHERE or str(part.expr) in taken.uniform


def constant(type_: T, value: Any) -> Val:
    """A typed literal whose value the compiler knows."""
    return Val(
        literal(type_, value),
        0,
        simple=True,
        const=True,
        value=value,
        nullable=value is None,
        uniform=EVERYWHERE,
    )


def _any(*vals: Val) -> bool:
    """Whether a value computed from `vals` (null if any is) can be null."""
    return any(v.nullable for v in vals)


def _null_where_null(cond: Val, chosen: pl.Expr, none: pl.Expr) -> pl.Expr:
    """`chosen`, but null where the condition is null (a `when` on a null condition would
    take the `otherwise` branch). A condition without nulls needs no such test."""
    return pl.when(cond.expr.is_null()).then(none).otherwise(chosen) if cond.nullable else chosen


def _filled(val: Val, expr: pl.Expr, fill: bool) -> pl.Expr:
    """`expr` (a test of `val`) with nulls read as `fill`; no fill needed if `val` has none."""
    return expr.fill_null(fill) if val.nullable else expr


def _integral(val: Val) -> bool:
    """A non-null literal with no fractional part: it can be a `whole` literal."""
    return val.const and isinstance(val.value, Decimal) and val.value == val.value.to_integral()


SHORT_NUMERATOR = 10**6
"""Below this a literal's digits multiply as a whole number (see _short_fraction)."""


def _short_fraction(val: Val) -> tuple[int, int] | None:
    """A non-null decimal literal with a fractional part as a fraction in lowest terms, when
    its numerator is short (1.25 -> 5 / 4, 0.4 -> 2 / 5, -0.035 -> -7 / 200).

    x * 1.25 = (x * 5) / 4 exactly, so rounding the quotient half to even gives the R10
    product; a whole-number product and a quotient by a whole number cost about half a
    rescaled Decimal product. With the numerator below 1e6, x * 5 overflows only where
    |x| > 1e22; there fast mode fails and exact mode computes the product itself."""
    if not val.const or not isinstance(val.value, Decimal) or _integral(val):
        return None
    numerator, denominator = val.value.as_integer_ratio()
    if abs(numerator) >= SHORT_NUMERATOR:
        return None
    return numerator, denominator


def is_constant(node: Node, parameters: Mapping[str, Any]) -> bool:
    """True when `node` reads no input, step or aggregate: its value is the same on every
    row and can be computed once at compile time."""
    for sub in walk(node):
        if isinstance(sub, Name) and sub.ident not in parameters:
            return False
        if isinstance(sub, Call) and CATALOG[sub.func].aggregate:
            return False
    return True


Mask = Val | None
"""Rows on which a node is taken (non-null Boolean); None means every row."""


@dataclass
class _StepState:
    """What one step collects while it is compiled."""

    name: str
    diagnostics: dict[str, list[pl.Expr]] = field(default_factory=dict)
    overflows: list[pl.Expr] = field(default_factory=list)
    level: int = 0

    def add_diagnostic(self, code: str, where: pl.Expr) -> None:
        self.diagnostics.setdefault(code, []).append(where)


def _row_mask(expr: pl.Expr) -> pl.Expr:
    """A null-free Boolean column of frame height, even where `expr` is a scalar."""
    return pl.repeat(False, pl.len()) | expr.fill_null(False)


class _FastModeOverflow(Exception):
    """A native Decimal operation overflowed somewhere: re-run in exact mode."""


class Compiler:
    """Compiles one plan to staged Polars expressions (in fast or exact mode)."""

    def __init__(
        self,
        plan: CompiledPlan,
        parameters: Mapping[str, Any],
        exact: bool,
        non_null: frozenset[str] = frozenset(),
    ) -> None:
        self.plan = plan
        self.exact = exact
        self.stages: list[dict[str, pl.Expr]] = []
        self.counter = 0
        self.temporaries: dict[bytes, Val] = {}
        """The temporary column of each expression put so far (by serialised expression):
        `if level == "md"` in two steps compares once."""
        self.names: dict[str, Val] = {}
        for key in input_columns(plan):
            self.names[key] = Val(pl.col(key), 0, simple=True, nullable=key not in non_null)
        self.parameters = parameter_values(plan, parameters)
        for key, value in self.parameters.items():
            self.names[key] = constant(plan.parameters[key][0], value)
        self.step_states: dict[str, _StepState] = {}
        self.diag_columns: dict[str, dict[str, str]] = {}
        self.overflow_columns: dict[str, list[str]] = {}
        self.state = _StepState("")
        self.final: dict[str, pl.Expr] = {}
        self.flag_terms: list[pl.Expr] = []
        """Every diagnostic condition, unmasked: `_flagged_expr` tests them all at once."""
        self.folding = False

    def ref_rank(self) -> Val:
        """Ordinal rank of employee_ref (allocate's tie-break), computed once per run."""
        if "__ref_rank" not in self.names:
            rank = pl.col("employee_ref").rank("ordinal").cast(pl.Int64)
            self.names["__ref_rank"] = self.put(rank, 0, "__ref_rank")
        return self.names["__ref_rank"]

    def partition(self, key: Val | None) -> Val | None:
        """What windows over `key` group by: the index of the key's first row, computed once
        per key. Grouping by that integer is several times cheaper than hashing the key's
        strings again for every window (null keys share one id, as they share one group;
        aggregates mask them out anyway)."""
        if key is None or key.const:
            return key
        label = f"__part:{key.expr}"
        if label not in self.names:
            if "__row" not in self.names:
                self.names["__row"] = self.put(pl.int_range(pl.len(), dtype=pl.UInt32), 0, "__row")
            row = self.names["__row"]
            self.names[label] = self.put(row.expr.first().over(key.expr), self.level(key, row))
        return self.names[label]

    # -- staging ---------------------------------------------------------------------
    def put(
        self,
        expr: pl.Expr,
        level: int,
        name: str | None = None,
        nullable: bool = True,
        uniform: frozenset[str] = frozenset(),
    ) -> Val:
        """Materialise `expr` as a column in stage `level`; usable from stage level + 1
        (while folding a constant, it stays inline: it is computed once, at compile time)."""
        if self.folding:
            return Val(expr, level, nullable=nullable, uniform=uniform)
        while len(self.stages) <= level:
            self.stages.append({})
        identity = None
        if name is None:  # a temporary: one column per distinct expression
            identity = expr.meta.serialize()
            if identity in self.temporaries:
                return self.temporaries[identity]
            self.counter += 1
            name = f"__t{self.counter}"
        self.stages[level][name] = expr
        column = Val(pl.col(name), level + 1, simple=True, nullable=nullable, uniform=uniform)
        if identity is not None:
            self.temporaries[identity] = column
        return column

    def share(self, val: Val) -> Val:
        """A value that may be read several times without recomputing its expression."""
        if val.simple:
            return val
        return self.put(val.expr, val.level, nullable=val.nullable, uniform=val.uniform)

    @staticmethod
    def level(*vals: Val | None) -> int:
        return max((v.level for v in vals if v is not None), default=0)

    def mask_and(self, taken: Mask, cond: pl.Expr, *deps: Val) -> Val:
        """taken AND cond (cond already null-free). Not materialised: masks are cheap
        Boolean combinations of shared columns, and most are only read once."""
        level = self.level(taken, *deps)
        expr = cond if taken is None else taken.expr & cond
        return Val(expr, level, uniform=_uniform(taken, *deps))

    @staticmethod
    def on(taken: Mask, cond: pl.Expr) -> pl.Expr:
        return cond if taken is None else taken.expr & cond

    def overflow(self, taken: Mask, cond: pl.Expr) -> None:
        """Record an overflow error where `cond` holds on taken rows."""
        self.state.overflows.append(self.on(taken, cond.fill_null(False)))

    # -- steps -----------------------------------------------------------------------
    def compile_step(self, step: CompiledStep) -> None:
        self.state = _StepState(step.name)
        default = (
            constant(step.type, None) if step.default is None else self.value(step.default, None)
        )
        cond = None if step.condition is None else self.share(self.value(step.condition, None))
        if cond is None or (cond.const and cond.value):
            result = self.value(step.expr, None)
        elif cond.const:  # a literal guard that is false (default) or null (null) on every row
            result = default if cond.value is False else constant(step.type, None)
        else:
            taken = self.mask_and(None, _filled(cond, cond.expr, False), cond)
            value = self.value(step.expr, taken)
            chosen = pl.when(cond.expr).then(value.expr).otherwise(default.expr)
            result = Val(
                _null_where_null(cond, chosen, literal(step.type, None)),
                self.level(cond, value, taken),
                nullable=cond.nullable or value.nullable or default.nullable,
                uniform=_uniform(cond, value, default),
            )
        column = self.put(
            result.expr.cast(POLARS_TYPES[step.type]),
            result.level,
            step.name,
            nullable=result.nullable,
            uniform=result.uniform,
        )
        self.names[step.name] = column
        self._finish_step_state()

    def _finish_step_state(self) -> None:
        """Queue the step's diagnostic and overflow masks for the final stage."""
        state = self.state
        codes: dict[str, str] = {}
        for code in sorted(state.diagnostics):
            name = f"__diag__{state.name}__{code}"
            self.final[name] = _row_mask(pl.any_horizontal(state.diagnostics[code]))
            self.flag_terms.extend(state.diagnostics[code])
            codes[code] = name
        self.diag_columns[state.name] = codes
        names = []
        for index, expr in enumerate(state.overflows):
            name = f"__ovf__{state.name}__{index}"
            self.final[name] = _row_mask(expr)
            names.append(name)
        self.overflow_columns[state.name] = names

    # -- expressions -----------------------------------------------------------------
    def value(self, node: Node, taken: Mask) -> Val:
        match node:
            case Number(value=v):
                return constant(T.DECIMAL, Decimal(v))
            case String(value=v):
                return constant(T.TEXT, v)
            case Boolean(value=v):
                return constant(T.BOOL, v)
            case DateLiteral(value=v):
                return constant(T.DATE, v)
            case Name(ident=ident):
                return self.names[ident]
        if self.exact or self.folding or not is_constant(node, self.parameters):
            return self.compound(node, taken)
        self.folding = True  # nothing is materialised: the whole expression is folded
        try:
            result = self.compound(node, taken)
        finally:
            self.folding = False
        return result if result.const else self.fold(result, node.type or T.DECIMAL)

    @staticmethod
    def fold(val: Val, type_: T) -> Val:
        """A row-independent value computed once now, by Polars itself (so exactly what the
        frame would have held). One that fails (an overflow) is left to fail at run time."""
        try:
            value = pl.select(val.expr.cast(POLARS_TYPES[type_])).item()
        except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError):
            return val
        return constant(type_, value)

    def compound(self, node: Node, taken: Mask) -> Val:
        match node:
            case Unary(op="-", operand=operand):
                inner = self.value(operand, taken)
                return Val(-inner.expr, inner.level, nullable=inner.nullable, uniform=inner.uniform)
            case Unary(operand=operand):
                return self.value(operand, taken)
            case Binary(op="&&" | "||"):
                return self.logical(node, taken)
            case Binary(op="^", left=left, right=right):
                return self.power(self.value(left, taken), int(right.value), taken)
            case Binary(op=op, left=left, right=right):
                return self.binary(op, self.value(left, taken), self.value(right, taken), taken)
            case If():
                return self.conditional(node, taken)
            case Call(func=func, args=args):
                return FUNCTIONS[func](self, args, taken)
        raise TypeError(f"unsupported node {node!r}")

    def logical(self, node: Binary, taken: Mask) -> Val:
        left = self.share(self.value(node.left, taken))
        if node.op == "&&":
            right_taken = self.mask_and(taken, _filled(left, left.expr, True), left)
            right = self.value(node.right, right_taken)
            expr = left.expr & right.expr
        else:
            right_taken = self.mask_and(taken, _filled(left, ~left.expr, True), left)
            right = self.value(node.right, right_taken)
            expr = left.expr | right.expr
        return Val(
            expr, self.level(left, right), nullable=_any(left, right), uniform=_uniform(left, right)
        )

    def conditional(self, node: If, taken: Mask) -> Val:
        cond = self.share(self.value(node.cond, taken))
        if cond.const:  # only the branch every row takes is compiled (or none, on null)
            if cond.value is None:
                return constant(node.type or T.DECIMAL, None)
            return self.value(node.then if cond.value else node.else_, taken)
        then_taken = self.mask_and(taken, _filled(cond, cond.expr, False), cond)
        else_taken = self.mask_and(taken, _filled(cond, ~cond.expr, False), cond)
        then = self.value(node.then, then_taken)
        else_ = self.value(node.else_, else_taken)
        chosen = pl.when(cond.expr).then(then.expr).otherwise(else_.expr)
        return Val(
            _null_where_null(cond, chosen, literal(node.type or T.DECIMAL, None)),
            self.level(cond, then, else_),
            nullable=cond.nullable or then.nullable or else_.nullable,
            uniform=_uniform(cond, then, else_),
        )

    def binary(self, op: str, left: Val, right: Val, taken: Mask) -> Val:
        result = self.binary_op(op, left, right, taken)
        return replace(result, uniform=_uniform(left, right))

    def binary_op(self, op: str, left: Val, right: Val, taken: Mask) -> Val:
        """`left op right` for a binary operator other than `^`, `&&` and `||`."""
        if op in COMPARISONS:
            return Val(
                compare(op, left, right), self.level(left, right), nullable=_any(left, right)
            )
        if self.exact:
            left, right = self.share(left), self.share(right)
        if op == "+":
            return self.add(left, right, taken)
        if op == "-":
            return self.subtract(left, right, taken)
        if op == "*":
            return self.multiply(left, right, taken)
        if op == "/":
            return self.divide(left, right, taken)
        return self.modulo(left, right, taken)

    # -- R10 arithmetic ---------------------------------------------------------------
    def add(self, a: Val, b: Val, taken: Mask) -> Val:
        level = self.level(a, b)
        if not self.exact:
            return Val(a.expr + b.expr, level, nullable=_any(a, b))
        sa, sb = a.expr.to_physical(), b.expr.to_physical()
        too_big = ((sa > 0) & (sb > i128(MAX_SCALED) - sa)) | (
            (sa < 0) & (sb < i128(-MAX_SCALED) - sa)
        )
        return self._guarded(too_big, a, b, level, taken, lambda x, y: x + y)

    def subtract(self, a: Val, b: Val, taken: Mask) -> Val:
        level = self.level(a, b)
        if not self.exact:
            return Val(a.expr - b.expr, level, nullable=_any(a, b))
        sa, sb = a.expr.to_physical(), b.expr.to_physical()
        too_big = ((sa >= 0) & (sb < sa - i128(MAX_SCALED))) | (
            (sa < 0) & (sb > sa + i128(MAX_SCALED))
        )
        return self._guarded(too_big, a, b, level, taken, lambda x, y: x - y)

    def _guarded(
        self,
        too_big: pl.Expr,
        a: Val,
        b: Val,
        level: int,
        taken: Mask,
        op: Callable[[pl.Expr, pl.Expr], pl.Expr],
    ) -> Val:
        """op(a, b) with both operands zeroed where it would overflow (recorded if taken)."""
        flag = self.put(too_big.fill_null(False), level)
        self.overflow(taken, flag.expr)
        safe_a = zero_where(a.expr, flag.expr)
        safe_b = zero_where(b.expr, flag.expr)
        return Val(op(safe_a, safe_b), flag.level)

    def multiply(self, a: Val, b: Val, taken: Mask) -> Val:
        level = self.level(a, b)
        if self.exact:
            return self._exact_product(a, b, taken)
        if a.const and not b.const:  # a literal factor on the right, where it is looked at
            a, b = b, a
        nullable = _any(a, b)
        if _integral(b):  # Decimal(38,0): an exact product, no 256-bit rescale (~9x cheaper)
            return Val(a.expr * whole(b.value), level, nullable=nullable)
        fraction = _short_fraction(b)
        if fraction is not None:  # x * 1.25 as (x * 5) / 4: see _short_fraction
            numerator, denominator = fraction
            return Val(a.expr * whole(numerator) / whole(denominator), level, nullable=nullable)
        return Val(a.expr * b.expr, level, nullable=nullable)

    def _exact_product(self, a: Val, b: Val, taken: Mask) -> Val:
        """round_half_even(|a| * |b| * 1e10) on scaled integers split into 19-digit limbs."""
        sa, sb = a.expr.to_physical(), b.expr.to_physical()
        level = self.level(a, b)
        e19, e38 = u128(10**19), u128(10**38)
        ua = self.put(sa.abs().cast(U128), level)
        ub = self.put(sb.abs().cast(U128), level)
        limbs = [
            self.put(ua.expr // e19, ua.level),
            self.put(ua.expr % e19, ua.level),
            self.put(ub.expr // e19, ub.level),
            self.put(ub.expr % e19, ub.level),
        ]
        a1, a0, b1, b0 = (v.expr for v in limbs)
        level = self.level(*limbs)
        high = self.put(a1 * b1, level)
        middle = self.put(a1 * b0 + a0 * b1, level)
        low_raw = self.put((middle.expr % e19) * e19 + a0 * b0, middle.level)
        upper = self.put(high.expr + middle.expr // e19 + low_raw.expr // e38, low_raw.level)
        low = self.put(low_raw.expr % e38, low_raw.level)
        quotient = self.put(low.expr // u128(10**10), low.level)
        remainder = low.expr % u128(10**10)
        half = u128(5 * 10**9)
        round_up = (remainder > half) | ((remainder == half) & (quotient.expr % u128(2) == 1))
        capped_upper = pl.min_horizontal(upper.expr, u128(10**10))
        magnitude = self.put(
            capped_upper * u128(10**28) + quotient.expr + round_up.cast(U128),
            self.level(upper, quotient),
        )
        too_big = self.put((magnitude.expr >= e38).fill_null(False), magnitude.level)
        self.overflow(taken, too_big.expr)
        signed = magnitude.expr.cast(I128, strict=False)
        negative = (sa < 0) != (sb < 0)
        scaled = (
            pl.when(too_big.expr)
            .then(i128(0))
            .when(negative)
            .then(i128(0) - signed)
            .otherwise(signed)
        )
        return Val(from_scaled(scaled), too_big.level)

    def divide(self, a: Val, b: Val, taken: Mask) -> Val:
        """R10 a / b; b = 0 gives null and division_by_zero on taken rows."""
        return self._quotient(a, b, taken, lambda x, y: x / y, check_overflow=True)

    def modulo(self, a: Val, b: Val, taken: Mask) -> Val:
        """Floored a % b (never overflows: |result| < |b|)."""
        return self._quotient(a, b, taken, lambda x, y: x % y, check_overflow=False)

    def _quotient(
        self,
        a: Val,
        b: Val,
        taken: Mask,
        op: Callable[[pl.Expr, pl.Expr], pl.Expr],
        check_overflow: bool,
    ) -> Val:
        level = self.level(a, b)
        if not self.exact:
            if b.const and b.value:  # a non-zero literal divisor: nothing to guard
                divisor = whole(b.value) if _integral(b) else b.expr
                return Val(op(a.expr, divisor), level, nullable=a.nullable)
            if not b.const:
                return self._fast_quotient(a, b, taken, op)
        zero = Val(b.expr == ZERO, level)
        if self.exact:
            zero = self.share(zero)
        self.state.add_diagnostic(
            DIVISION_BY_ZERO, self.on(taken, (zero.expr & a.expr.is_not_null()).fill_null(False))
        )
        divisor = b.expr + zero.expr.cast(pl.Int64).cast(DEC)
        dividend = a.expr
        if self.exact and check_overflow:
            # |a / b| rounds to >= 1e28 exactly when |b| < 1 and |sa| >= 1e28 * |sb|; a quotient
            # can never land in (MAX, MAX + 0.5e-10) when |sb| < 1e10 (see docs/engine.md).
            sa, sb = a.expr.to_physical().abs(), b.expr.to_physical().abs()
            too_big = (sb < i128(10**10)) & (sb > i128(0)) & (sa >= sb * i128(10**28))
            flag = self.put(too_big.fill_null(False), level)
            self.overflow(taken, flag.expr)
            dividend = zero_where(a.expr, flag.expr)
            level = flag.level
        expr = pl.when(zero.expr).then(literal(T.DECIMAL, None)).otherwise(op(dividend, divisor))
        return Val(expr, max(level, zero.level))

    def _fast_quotient(
        self, a: Val, b: Val, taken: Mask, op: Callable[[pl.Expr, pl.Expr], pl.Expr]
    ) -> Val:
        """a op b with the dividend nulled where b = 0: Polars' Decimal `/` and `%` only test
        the divisor on rows where both operands are valid (pinned by a test), so this raises
        nothing and needs no substitute divisor. A divisor that is an expression (an
        aggregate, say) is read three times, so it is materialised once."""
        b = self.share(b)
        zero = b.expr == ZERO
        self.state.add_diagnostic(
            DIVISION_BY_ZERO, self.on(taken, (zero & a.expr.is_not_null()).fill_null(False))
        )
        return Val(op(pl.when(~zero).then(a.expr), b.expr), self.level(a, b))

    def power(self, base: Val, exponent: int, taken: Mask) -> Val:
        """x ^ n: n - 1 products left to right, each rounded (x ^ 0 = 1, null stays null)."""
        if exponent == 0:
            return Val(pl.when(base.expr.is_null()).then(None).otherwise(ONE), base.level)
        base = self.share(base)
        result = base
        for _ in range(exponent - 1):
            result = self.multiply(self.share(result), base, taken)
        return result

    def sum_scaled(self, values: Val, key: Val | None) -> tuple[Val, pl.Expr | None]:
        """Sum of a Decimal column (nulls skipped) over the frame or per key, with its
        overflow mask in exact mode (None in fast mode)."""

        def over(expr: pl.Expr) -> pl.Expr:
            return expr.over(key.expr) if key is not None else expr

        level = self.level(values, key)
        if not self.exact:
            # Polars 2.1 checks a plain Decimal sum for overflow but NOT a windowed one (it
            # wraps silently). Sum |x| over the whole frame too: if that does not overflow,
            # no group sum can; if it does, Polars raises and we re-run in exact mode.
            self.put(values.expr.abs().sum(), level)
            return Val(over(values.expr.sum()), level), None
        sx = values.expr.to_physical()
        e20 = i128(10**20)
        parts = self.put(over((sx // e20).sum()), level), self.put(over((sx % e20).sum()), level)
        high_sum, low_sum = parts
        upper = self.put(high_sum.expr + low_sum.expr // e20, low_sum.level)
        low = low_sum.expr % e20
        limit = i128(10**18)
        too_big = self.put(
            (upper.expr >= limit)
            | (upper.expr < -limit)
            | ((upper.expr == -limit) & (low == i128(0))),
            upper.level,
        )
        scaled = pl.when(too_big.expr).then(i128(0)).otherwise(upper.expr * e20 + low)
        return Val(from_scaled(scaled), too_big.level), too_big.expr


COMPARISONS: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}

MIRRORED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
"""`a op b` is `b MIRRORED[op] a`."""


def row_independent(val: Val) -> bool:
    """A literal, or an expression that reads no column (an unfolded `-0` in exact mode)."""
    return val.const or not val.expr.meta.root_names()


def compare(op: str, left: Val, right: Val) -> pl.Expr:
    """`left op right`, with a row-independent value never on the left: Polars 2.1 answers
    `literal < column` with ONE row when the column holds one broadcast value, as
    `with_columns` stores a literal or a scalar aggregate (pinned by a test)."""
    if row_independent(left) and not row_independent(right):
        left, right, op = right, left, MIRRORED[op]
    return COMPARISONS[op](left.expr, right.expr)


def parameter_values(plan: CompiledPlan, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The plan's parameter values with `overrides` (raw values, coerced by dtype)."""
    values = {name: value for name, (_, value) in plan.parameters.items()}
    dtypes = {spec.key: spec.dtype for spec in plan.document.parameters}
    for name, raw in overrides.items():
        if name not in dtypes:
            raise KeyError(f"unknown parameter '{name}'")
        values[name] = coerce_value(dtypes[name], raw)
    return values


def literal(type_: T, value: Any) -> pl.Expr:
    """A typed literal (null when value is None); decimals always via Decimal."""
    if value is not None and type_ == T.DECIMAL:
        return dec(value)
    return pl.lit(value, dtype=POLARS_TYPES[type_])


# -- catalog functions -------------------------------------------------------------------
Function = Callable[[Compiler, Sequence[Node], Mask], Val]


def _args(c: Compiler, args: Sequence[Node], taken: Mask) -> list[Val]:
    return [c.value(arg, taken) for arg in args]


def _any_null(vals: Sequence[Val]) -> pl.Expr:
    return pl.any_horizontal([v.expr.is_null() for v in vals])


def _strict(vals: Sequence[Val], expr: pl.Expr) -> pl.Expr:
    """`expr`, but null where any of `vals` is (values that cannot be null need no test)."""
    if not any(v.const and v.value is None for v in vals):
        vals = [v for v in vals if v.nullable]
        if not vals:
            return expr
    return pl.when(_any_null(vals)).then(None).otherwise(expr)


def _extreme(horizontal: Callable[..., pl.Expr]) -> Function:
    def compile_(c: Compiler, args: Sequence[Node], taken: Mask) -> Val:
        vals = [c.share(v) for v in _args(c, args, taken)]
        expr = _strict(vals, horizontal([v.expr for v in vals]))
        return Val(expr, c.level(*vals), nullable=_any(*vals))

    return compile_


def _min_max(x: Val, lo: Val, hi: Val) -> pl.Expr:
    """min(max(x, lo), hi), null if any is null."""
    vals = (x, lo, hi)
    return _strict(vals, pl.min_horizontal(pl.max_horizontal(x.expr, lo.expr), hi.expr))


def _clip(c: Compiler, args: Sequence[Node], taken: Mask) -> Val:
    x, lo, hi = (c.share(v) for v in _args(c, args, taken))
    return Val(_min_max(x, lo, hi), c.level(x, lo, hi), nullable=_any(x, lo, hi))


def _cap_floor(c: Compiler, args: Sequence[Node], taken: Mask) -> Val:
    x, cap, floor = (c.share(v) for v in _args(c, args, taken))
    return Val(_min_max(x, floor, cap), c.level(x, cap, floor), nullable=_any(x, cap, floor))


def _hurdle(c: Compiler, args: Sequence[Node], taken: Mask) -> Val:
    perf, rate = (c.share(v) for v in _args(c, args, taken))
    expr = pl.when(compare("<", perf, rate)).then(ZERO).otherwise(perf.expr)
    return Val(_strict((perf, rate), expr), c.level(perf, rate), nullable=_any(perf, rate))


def _abs(c: Compiler, args: Sequence[Node], taken: Mask) -> Val:
    x = c.value(args[0], taken)
    return Val(x.expr.abs(), x.level, nullable=x.nullable)


def _not(c: Compiler, args: Sequence[Node], taken: Mask) -> Val:
    x = c.value(args[0], taken)
    return Val(~x.expr, x.level, nullable=x.nullable, uniform=x.uniform)


def _round_to(c: Compiler, x: Val, places: int, taken: Mask) -> Val:
    """Half-even to `places` decimals; the result overflows only if it reaches 1e28."""
    if places >= 10:
        return x
    if c.exact:
        x = c.share(x)
        threshold = 10**38 - 5 * 10 ** (9 - places)
        flag = c.put((x.expr.to_physical().abs() >= i128(threshold)).fill_null(False), x.level)
        c.overflow(taken, flag.expr)
        safe = zero_where(x.expr, flag.expr)
        return Val(safe.round(places), flag.level, nullable=x.nullable)
    return Val(x.expr.round(places), x.level, nullable=x.nullable)


def _round2(c: Compiler, args: Sequence[Node], taken: Mask) -> Val:
    return _round_to(c, c.value(args[0], taken), 2, taken)


def _round(c: Compiler, args: Sequence[Node], taken: Mask) -> Val:
    places = args[1]
    assert isinstance(places, Number)
    return _round_to(c, c.value(args[0], taken), int(places.value), taken)


def _pct(c: Compiler, args: Sequence[Node], taken: Mask) -> Val:
    x = c.value(args[0], taken)
    return Val(x.expr / whole(100), x.level, nullable=x.nullable)


def _pct_change(c: Compiler, args: Sequence[Node], taken: Mask) -> Val:
    """round10((cur - prev) / prev); the difference itself must not overflow either
    (it is not computed where prev = 0, which gives null and division_by_zero)."""
    cur, prev = (c.share(v) for v in _args(c, args, taken))
    nonzero = c.mask_and(taken, _filled(prev, prev.expr != ZERO, False), prev)
    difference = c.share(c.subtract(cur, prev, nonzero))
    return c.divide(difference, prev, taken)


def _days(expr: pl.Expr) -> pl.Expr:
    return expr.dt.total_days()


def _days_between(c: Compiler, args: Sequence[Node], taken: Mask) -> Val:
    a, b = _args(c, args, taken)
    return Val(_days(b.expr - a.expr).cast(DEC), c.level(a, b), nullable=_any(a, b))


def _prorate(c: Compiler, args: Sequence[Node], taken: Mask) -> Val:
    start, end, period_start, period_end = (c.share(v) for v in _args(c, args, taken))
    ps, pe = period_start.expr, period_end.expr
    level = c.level(start, end, period_start, period_end)
    known = period_start.const and period_end.const
    if known and None not in (period_start.value, period_end.value):
        days = (period_end.value - period_start.value).days + 1
        if days > 0:  # a literal, valid period: no invalid_period and no null result possible
            covered = _covered_days(start.expr, end.expr, period_start.value, period_end.value)
            if days <= MAX_SHARE_TABLE:  # a lookup: 8x cheaper than a Decimal division
                return Val(pl.lit(_day_shares(days)).gather(covered), level, nullable=False)
            return Val(covered.cast(DEC) / dec(days), level, nullable=False)
    s = pl.coalesce(start.expr, ps)
    e = pl.coalesce(end.expr, pe)
    covered = pl.max_horizontal(
        pl.lit(0, dtype=pl.Int64), _days(pl.min_horizontal(e, pe) - pl.max_horizontal(s, ps)) + 1
    )
    total = c.put(_days(pe - ps) + 1, level)
    invalid = (total.expr <= 0).fill_null(False)
    c.state.add_diagnostic(INVALID_PERIOD, c.on(taken, invalid))
    safe_total = pl.when(invalid).then(pl.lit(1, dtype=pl.Int64)).otherwise(total.expr)
    share = covered.cast(DEC) / safe_total.cast(DEC)
    expr = pl.when(invalid | ps.is_null() | pe.is_null()).then(None).otherwise(share)
    return Val(expr, total.level)


MAX_SHARE_TABLE = 100_000
"""Longest literal period (days) whose `prorate` shares are looked up rather than divided."""


@lru_cache(maxsize=16)
def _day_shares(days: int) -> pl.Series:
    """k / days for k = 0..days, computed by Polars' own Decimal division (so exactly the
    values the division would give on each row)."""
    covered = pl.int_range(days + 1, dtype=pl.Int64, eager=True).cast(DEC)
    return covered / pl.Series([Decimal(days)], dtype=DEC)


def _covered_days(start: pl.Expr, end: pl.Expr, first: date, last: date) -> pl.Expr:
    """max(0, min(end, last) - max(start, first) + 1) in days, null start = first and null
    end = last, on the dates' physical day numbers (Int64) rather than as Date arithmetic."""
    first_day, last_day = (pl.lit((d - EPOCH).days, dtype=pl.Int64) for d in (first, last))
    s = start.to_physical().cast(pl.Int64).fill_null(first_day).clip(lower_bound=first_day)
    e = end.to_physical().cast(pl.Int64).fill_null(last_day).clip(upper_bound=last_day)
    return (e - s + 1).clip(lower_bound=0)


def _taking(taken: Mask, key: Val | None) -> pl.Expr:
    """Rows that take an aggregate call: taken, and with a non-null key when keyed."""
    if key is not None and not key.const:  # already a column: no `repeat`, which inside
        if taken is not None and not key.nullable:  # a window Polars evaluates group by group
            return taken.expr
        rows = key.expr.is_not_null()
        return rows if taken is None else taken.expr & rows
    # Always a column, never a scalar: a literal guard (`true`) must still count every row.
    every_row = pl.repeat(True, pl.len())
    rows = every_row if taken is None else taken.expr & every_row
    return rows if key is None else rows & key.expr.is_not_null()


def _every_row(taken: Mask, key: Val | None) -> bool:
    """Whether every row takes a keyed aggregate call: no guard and a key column without
    nulls (then its masks can be left out)."""
    return taken is None and key is not None and not key.const and not key.nullable


def _over(expr: pl.Expr, part: Val | None) -> pl.Expr:
    """`expr` per group of `part` (see Compiler.partition), or over the whole frame."""
    return expr if part is None else expr.over(part.expr)


def _scope(taken: Mask, part: Val | None) -> Mask:
    """The rows an aggregate over `part` sums or counts: the taken ones, or every row when
    the guard takes whole groups (then a taken group's total is the same either way, and
    the unguarded aggregate is one column shared with the same call elsewhere, as in
    `if (sum_over(x, k) == 0) then 0 else x / sum_over(x, k)`)."""
    return None if _groupwise(taken, part) else taken


def _group_uniform(taken: Mask, part: Val | None) -> frozenset[str]:
    """`Val.uniform` of an aggregate over `part` under `taken`."""
    if not _groupwise(taken, part):
        return frozenset()
    return EVERYWHERE if part is None or part.const else frozenset({str(part.expr)})


def _sum_over(c: Compiler, args: Sequence[Node], taken: Mask) -> Val:
    x = c.share(c.value(args[0], taken))
    key = c.share(c.value(args[1], taken)) if len(args) > 1 else None
    part = c.partition(key)
    scope = _scope(taken, part)
    rows = Val(_taking(scope, key), c.level(scope, key, part))
    # Materialised: read by the overflow guard and the sum, and a `when` inside a window is
    # evaluated group by group.
    every = _every_row(scope, key) and not row_independent(x)  # a literal must become a column
    contributions = x if every else c.share(Val(pl.when(rows.expr).then(x.expr), c.level(rows, x)))
    if c.exact:
        rows = c.share(rows)
    total, too_big = c.sum_scaled(contributions, part)
    total = c.share(total)
    taking = rows if scope is taken else Val(_taking(taken, key), c.level(taken, key, part))
    if too_big is not None:
        c.overflow(taking, too_big)
    uniform = _group_uniform(taken, part)
    if every and taken is None:
        return Val(total.expr, c.level(total, rows), nullable=False, uniform=uniform)
    expr = pl.when(taking.expr).then(total.expr)
    return Val(expr, c.level(total, taking), uniform=uniform)


def _count_over(c: Compiler, args: Sequence[Node], taken: Mask) -> Val:
    key = c.share(c.value(args[0], taken)) if args else None
    part = c.partition(key)
    scope = _scope(taken, part)
    # Untaken rows and null keys get null below, so without a guard a group's size is its count.
    counted = pl.len() if scope is None else _taking(scope, key).cast(pl.Int64).sum()
    count = _over(counted, part).cast(DEC)
    level = c.level(taken, key, part)
    uniform = _group_uniform(taken, part)
    if _every_row(taken, key):
        return Val(count, level, nullable=False, uniform=uniform)
    return Val(pl.when(_taking(taken, key)).then(count), level, uniform=uniform)


def _allocate(c: Compiler, args: Sequence[Node], taken: Mask) -> Val:
    """docs/engine.md §4: R10 raw shares, floored to cents, leftover cents by remainder.

    Stages: pool constancy per group; weight sum; raw shares; rank by remainder and the
    group's leftover cents; the result. Floors, remainders and cents are computed on the
    Int128 physical values (units of 1e-10), and turned back into a Decimal once."""
    pool = c.share(c.value(args[0], taken))
    weight = c.share(c.value(args[1], taken))
    key = c.share(c.value(args[2], taken)) if len(args) > 2 else None
    part = c.partition(key)
    level = c.level(taken, pool, weight, key, part)
    valid = _taking(taken, key)
    for operand in (pool, weight):
        if operand.nullable:
            valid = valid & operand.expr.is_not_null()
    c.state.add_diagnostic(NEGATIVE_WEIGHT, valid & (weight.expr < ZERO))
    included = c.put(valid & (weight.expr >= ZERO), level)
    # Pools and weights of the included rows are materialised: each is read by windows,
    # and a `when` inside a window is evaluated group by group.
    pools = c.put(pl.when(included.expr).then(pool.expr), included.level)
    weights = c.put(pl.when(included.expr).then(weight.expr), included.level)
    level = c.level(pools, weights, part)
    # Two plain windows, compared in the next stage: `(min != max).over()` is not a plain
    # aggregate, and Polars evaluates it group by group (1.5x the cost of both windows).
    lowest = c.put(_over(pools.expr.min(), part), level)
    highest = c.put(_over(pools.expr.max(), part), level)
    varying = Val((lowest.expr != highest.expr).fill_null(False), c.level(lowest, highest))
    c.state.add_diagnostic(POOL_NOT_CONSTANT, included.expr & varying.expr)
    usable = Val(included.expr & ~varying.expr, varying.level)
    if c.exact:
        usable = c.share(usable)
    # The weight sum runs over the included rows, in the same stage as the pool test: in a
    # group whose pools agree every included row is usable, and a group whose pools differ
    # shares nothing, so its sum is never read (overflows are recorded on usable rows only).
    wsum, too_big = c.sum_scaled(weights, part)
    if too_big is not None:  # like the reference: on every usable row of the group
        c.overflow(usable, too_big)
    wsum = c.share(wsum)
    in_range = pl.lit(True) if too_big is None else ~too_big
    zero_sum = usable.expr & (wsum.expr == ZERO) & in_range
    c.state.add_diagnostic(DIVISION_BY_ZERO, zero_sum)
    sharing_expr = usable.expr & ~zero_sum
    sharing_level = c.level(usable, wsum)
    shared_pool = Val(pl.when(sharing_expr).then(pool.expr), sharing_level)
    product = c.multiply(shared_pool, weight, Val(sharing_expr, sharing_level))
    if c.exact:
        raw = c.share(c.divide(c.share(product), wsum, Val(sharing_expr, sharing_level)))
    else:  # the product is null wherever the weight sum is 0: a plain division is safe
        raw = c.share(Val(product.expr / wsum.expr, c.level(product, wsum)))
    # raw is non-null exactly on the sharing rows; so are the remainder, floor and rank.
    scaled = raw.expr.to_physical()
    cents = i128(CENT_SCALED)
    remainder = c.put(scaled % cents, raw.level)  # an Int128 `%` is a software division
    floors = c.put(scaled - remainder.expr, remainder.level)
    order_key = remainder.expr.cast(pl.Int64) * pl.lit(2**32, dtype=pl.Int64) - c.ref_rank().expr
    order = c.put(order_key, c.level(remainder, c.ref_rank()))
    rank = c.put(_over(order.expr.rank("ordinal", descending=True), part), order.level)
    # The pool is the group's on every sharing row, and leftover is read on those rows only:
    # floor((pool - floor_sum) / cent) is the pool's whole cents less floor_sum's, since
    # floor_sum is a whole number of cents.
    floor_sum = _over(floors.expr.sum(), part)
    leftover = c.put((pool.expr.to_physical() - floor_sum) // cents, floors.level)
    cent = pl.when(rank.expr.cast(I128) <= leftover.expr).then(cents)
    return Val(from_scaled(floors.expr + cent.otherwise(i128(0))), c.level(rank, leftover))


FUNCTIONS: dict[str, Function] = {
    "min": _extreme(pl.min_horizontal),
    "max": _extreme(pl.max_horizontal),
    "abs": _abs,
    "not": _not,
    "round2": _round2,
    "round": _round,
    "clip": _clip,
    "cap_floor": _cap_floor,
    "hurdle": _hurdle,
    "pct": _pct,
    "pct_change": _pct_change,
    "days_between": _days_between,
    "prorate": _prorate,
    "sum_over": _sum_over,
    "count_over": _count_over,
    "allocate": _allocate,
}
if set(FUNCTIONS) != set(CATALOG):  # a catalog entry without a case here is a bug
    raise RuntimeError(f"Polars backend and catalog disagree: {set(FUNCTIONS) ^ set(CATALOG)}")


# -- evaluation --------------------------------------------------------------------------
_COMPILED: OrderedDict[tuple, Compiler] = OrderedDict()
_CACHE_SIZE = 32


def compiled(
    plan: CompiledPlan,
    parameters: Mapping[str, Any],
    exact: bool,
    non_null: frozenset[str] = frozenset(),
) -> Compiler:
    """The compiled stages of a plan, cached by content (plan hash, parameter overrides,
    mode and which inputs hold no null): the expressions name columns only, so they apply to
    any frame of inputs whose null-free columns include `non_null`."""
    overrides = tuple(sorted((k, str(v)) for k, v in parameters.items()))
    key = (plan.plan_hash, overrides, exact, non_null)
    compiler = _COMPILED.get(key)
    if compiler is None:
        compiler = Compiler(plan, parameters, exact, non_null)
        for step in plan.steps:
            compiler.compile_step(step)
        _COMPILED[key] = compiler
        while len(_COMPILED) > _CACHE_SIZE:
            _COMPILED.popitem(last=False)
    _COMPILED.move_to_end(key)
    return compiler


def input_columns(plan: CompiledPlan) -> tuple[str, ...]:
    """The columns a plan reads from the input frame: its inputs and the two references."""
    return (*plan.input_types, "employee_ref", "fund_ref")


def null_free_inputs(plan: CompiledPlan, frame: pl.DataFrame) -> frozenset[str]:
    """The input columns of `frame` that hold no null (a count Polars keeps, so free): the
    compiler leaves out their null tests. Required inputs are usually among them."""
    return frozenset(
        n for n in input_columns(plan) if n in frame.columns and frame[n].null_count() == 0
    )


EAGER_FLAGS = pl.QueryOptFlags.none(simplify_expression=True)
"""What `DataFrame.with_columns` itself applies: type coercion and expression
simplification, none of the whole-query optimisations (our stages share sub-expressions
already, and common-subexpression elimination over them costs more than it finds)."""


def staged_query(frame: pl.DataFrame, compiler: Compiler) -> pl.LazyFrame:
    """Every stage of steps and temporaries as one `with_columns` of one lazy query."""
    query = frame.lazy()
    for stage in compiler.stages:
        if stage:
            query = query.with_columns(_aliased(stage))
    return query


def apply_stages(frame: pl.DataFrame, compiler: Compiler, *extra: pl.Expr) -> pl.DataFrame:
    """The stages (and `extra` columns after them) run as one query by the in-memory engine
    with the eager API's optimiser flags: the same work as one `with_columns` per stage,
    without a query per stage (docs/dev/performance-passes.md "Fourth pass"). The diagnostic
    and overflow masks are not among the stages: `_run` adds them where some row needs them."""
    query = staged_query(frame, compiler)
    if extra:
        query = query.with_columns(extra)
    return query.collect(engine="in-memory", optimizations=EAGER_FLAGS)


def _diagnostics_expr(plan: CompiledPlan, compiler: Compiler) -> pl.Expr:
    entries: list[pl.Expr] = []
    for step in plan.steps:
        for code, column in compiler.diag_columns[step.name].items():
            entry = {"step": step.name, "code": code, "message": DIAGNOSTIC_MESSAGES[code]}
            entries.append(pl.when(pl.col(column)).then(pl.lit(entry, dtype=_DIAGNOSTIC_STRUCT)))
    entries.append(_null_payout_expr(plan, compiler))
    return pl.concat_list(entries).list.drop_nulls()


def _null_payout_expr(plan: CompiledPlan, compiler: Compiler) -> pl.Expr:
    """One `null_payout` entry where the payout is null (docs/engine.md §7)."""
    payout = plan.payout
    relevant = _transitive(plan, payout)
    chain = pl.when(pl.lit(False)).then(None)
    for step in plan.steps:
        if step.name not in relevant:
            continue
        earlier_not_null = [
            pl.col(s.name).is_not_null()
            for s in plan.steps[: plan.steps.index(step)]
            if s.name in relevant
        ]
        first = pl.col(step.name).is_null()
        if earlier_not_null:
            first = first & pl.all_horizontal(earlier_not_null)
        causes = list(compiler.diag_columns[step.name].items())
        for code, column in causes:
            chain = chain.when(first & pl.col(column)).then(_payout_entry(payout, step.name, code))
        chain = chain.when(first).then(_payout_entry(payout, step.name, None))
    return pl.when(pl.col(payout).is_null()).then(chain.otherwise(None))


def _payout_entry(payout: str, first: str, cause: str | None) -> pl.Expr:
    entry = {
        "step": payout,
        "code": NULL_PAYOUT,
        "message": null_payout_message(payout, first, cause),
    }
    return pl.lit(entry, dtype=_DIAGNOSTIC_STRUCT)


def _transitive(plan: CompiledPlan, name: str) -> set[str]:
    seen = {name}
    todo = [name]
    while todo:
        for dep in plan.dependencies.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def _run(
    plan: CompiledPlan, frame: pl.DataFrame, parameters: Mapping[str, Any], exact: bool
) -> tuple[pl.DataFrame, Compiler]:
    compiler = compiled(plan, parameters, exact, null_free_inputs(plan, frame))
    try:
        if exact:
            result = apply_stages(frame, compiler, *_aliased(compiler.final))
            return _outputs(plan, result, compiler, flagged=True), compiler
        result = apply_stages(frame, compiler, _flagged_expr(plan, compiler).alias(FLAGGED))
        flagged = result.height > 0 and bool(result.get_column(FLAGGED)[0])
        if flagged:
            result = result.with_columns(_aliased(compiler.final))
        return _outputs(plan, result, compiler, flagged), compiler
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError) as error:
        # The diagnostic masks are native operations too: `(x + x) / x`'s zero test reads
        # `x + x`, which can overflow on a row whose step is never taken.
        if not exact and "overflow" in str(error):
            raise _FastModeOverflow from error
        raise


FLAGGED = "__flagged"
"""The column of `_flagged_expr` in a fast-mode result."""


def _aliased(columns: Mapping[str, pl.Expr]) -> list[pl.Expr]:
    return [expr.alias(name) for name, expr in columns.items()]


def _flagged_expr(plan: CompiledPlan, compiler: Compiler) -> pl.Expr:
    """Whether any row has a diagnostic or a null payout: one scalar, computed with the
    stages, so that a plan run without diagnostics never materialises its masks (fast mode
    records no overflow masks, so `final` holds diagnostics only)."""
    return pl.any_horizontal([pl.col(plan.payout).is_null(), *compiler.flag_terms]).any()


def _outputs(
    plan: CompiledPlan, result: pl.DataFrame, compiler: Compiler, flagged: bool
) -> pl.DataFrame:
    """The steps, the diagnostics list and the overflow masks of an evaluated frame."""
    # Without diagnostics the list is one literal that the frame broadcasts: no 10k empty
    # lists are built.
    diagnostics = (
        _diagnostics_expr(plan, compiler) if flagged else pl.lit([], dtype=DIAGNOSTIC_DTYPE)
    )
    overflow_columns = [c for cols in compiler.overflow_columns.values() for c in cols]
    outputs = [
        pl.col("employee_ref"),
        *(pl.col(name) for name in plan.display_order),
        diagnostics.alias("diagnostics"),
        *(pl.col(c) for c in overflow_columns),
    ]
    return result.select(outputs)


def _raise_first_overflow(plan: CompiledPlan, result: pl.DataFrame, compiler: Compiler) -> None:
    """ValueOverflow naming the first step (evaluation order) with an overflow on a taken
    row, and its first such row in input order."""
    for step in plan.steps:
        columns = compiler.overflow_columns[step.name]
        if not columns:
            continue
        hits = result.select(pl.any_horizontal(columns)).to_series()
        if hits.any():
            row = hits.arg_true()[0]
            raise ValueOverflow(step.name, result.get_column("employee_ref")[row])


def evaluate(
    plan: CompiledPlan, frame: pl.DataFrame, parameters: Mapping[str, Any] | None = None
) -> EvalResult:
    """Evaluate every step over `frame` (typed inputs, see engine.data.load_inputs)."""
    parameters = dict(parameters or {})
    try:
        result, compiler = _run(plan, frame, parameters, exact=False)
    except _FastModeOverflow:
        result, compiler = _run(plan, frame, parameters, exact=True)
        _raise_first_overflow(plan, result, compiler)
    columns = ["employee_ref", *plan.display_order, "diagnostics"]
    return EvalResult(result.select(columns))
