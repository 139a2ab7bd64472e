"""Function catalog v1 (ENGINE.md §6): signatures, typing rules and docs of every function.

The catalog is the single list of what a plan may call. Backends keep one implementation
case per function name; adding a function means one `FunctionSpec` here plus one case in
each backend (reference, Polars, Excel). `CATALOG_VERSION` is part of every snapshot hash,
so any change of meaning here must bump it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.dsl.ast import Type

CATALOG_VERSION = "1"

ANY_TYPE: frozenset[Type] = frozenset(Type)
DECIMAL: frozenset[Type] = frozenset({Type.DECIMAL})
DATE: frozenset[Type] = frozenset({Type.DATE})
BOOL: frozenset[Type] = frozenset({Type.BOOL})
ORDERED: frozenset[Type] = frozenset({Type.DECIMAL, Type.DATE})


@dataclass(frozen=True)
class Param:
    """One parameter: its name (for messages and docs) and the types it accepts."""

    name: str
    types: frozenset[Type]


@dataclass(frozen=True)
class FunctionSpec:
    """Signature and documentation of one catalog function.

    `params` lists the parameters in order; when `variadic` is set the last one repeats.
    `same_type` requires every argument to share one type, which is then the result type
    (`min`, `max`); otherwise the result is `result`. `literal_int_args` maps an argument
    index to the inclusive range an integer literal there must lie in.
    """

    name: str
    params: tuple[Param, ...]
    min_args: int
    max_args: int | None
    result: Type | None
    doc: str
    example: str
    same_type: bool = False
    aggregate: bool = False
    literal_int_args: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def variadic(self) -> bool:
        return self.max_args is None

    def param_for(self, index: int) -> Param:
        """The parameter an argument at `index` binds to (the last one repeats)."""
        return self.params[min(index, len(self.params) - 1)]

    def arity_text(self) -> str:
        if self.max_args is None:
            return f"at least {self.min_args} arguments"
        if self.min_args == self.max_args:
            plural = "" if self.min_args == 1 else "s"
            return f"{self.min_args} argument{plural}"
        return f"{self.min_args} to {self.max_args} arguments"

    def signature(self) -> str:
        parts = []
        for index, param in enumerate(self.params):
            text = param.name
            if self.variadic and index == len(self.params) - 1:
                text += ", ..."
            if index >= self.min_args:
                text = f"[{text}]"
            parts.append(text)
        return f"{self.name}({', '.join(parts)})"

    def result_type(self, arg_types: Sequence[Type]) -> Type:
        """Result type for well-typed arguments (call `engine.check` for validation)."""
        if self.same_type:
            return arg_types[0]
        assert self.result is not None
        return self.result


def _spec(*args, **kwargs) -> FunctionSpec:
    return FunctionSpec(*args, **kwargs)


_SPECS = (
    _spec(
        "min",
        (Param("a", ORDERED), Param("b", ORDERED)),
        2,
        None,
        None,
        "Smallest of 2+ decimals or 2+ dates; null if any argument is null.",
        "min(bonus, 50000)",
        same_type=True,
    ),
    _spec(
        "max",
        (Param("a", ORDERED), Param("b", ORDERED)),
        2,
        None,
        None,
        "Largest of 2+ decimals or 2+ dates; null if any argument is null.",
        "max(fund_return, 0)",
        same_type=True,
    ),
    _spec(
        "abs",
        (Param("x", DECIMAL),),
        1,
        1,
        Type.DECIMAL,
        "Absolute value.",
        "abs(fund_return - benchmark)",
    ),
    _spec(
        "not",
        (Param("b", BOOL),),
        1,
        1,
        Type.BOOL,
        "Logical negation; null stays null.",
        "not(is_leaver)",
    ),
    _spec(
        "round2",
        (Param("x", DECIMAL),),
        1,
        1,
        Type.DECIMAL,
        "Round to 2 decimal places, half to even (banker's rounding).",
        "round2(bonus)",
    ),
    _spec(
        "round",
        (Param("x", DECIMAL), Param("n", DECIMAL)),
        2,
        2,
        Type.DECIMAL,
        "Round to n decimal places (n an integer literal 0..10), half to even.",
        "round(multiplier, 4)",
        literal_int_args={1: (0, 10)},
    ),
    _spec(
        "clip",
        (Param("x", DECIMAL), Param("lo", DECIMAL), Param("hi", DECIMAL)),
        3,
        3,
        Type.DECIMAL,
        "min(max(x, lo), hi): the upper bound wins if lo > hi.",
        "clip(score, 0, 1.5)",
    ),
    _spec(
        "cap_floor",
        (Param("x", DECIMAL), Param("cap", DECIMAL), Param("floor", DECIMAL)),
        3,
        3,
        Type.DECIMAL,
        "min(max(x, floor), cap): the cap wins if floor > cap.",
        "cap_floor(bonus, 200000, 0)",
    ),
    _spec(
        "hurdle",
        (Param("perf", DECIMAL), Param("rate", DECIMAL)),
        2,
        2,
        Type.DECIMAL,
        "0 if perf < rate, else perf.",
        "hurdle(fund_return, 0.05)",
    ),
    _spec(
        "pct",
        (Param("x", DECIMAL),),
        1,
        1,
        Type.DECIMAL,
        "x / 100 (a percentage as a fraction).",
        "pct(12.5)",
    ),
    _spec(
        "pct_change",
        (Param("cur", DECIMAL), Param("prev", DECIMAL)),
        2,
        2,
        Type.DECIMAL,
        "(cur - prev) / prev; prev = 0 gives null and diagnostic division_by_zero.",
        "pct_change(nav_end, nav_start)",
    ),
    _spec(
        "days_between",
        (Param("a", DATE), Param("b", DATE)),
        2,
        2,
        Type.DECIMAL,
        "Whole days from date a to date b (b - a, may be negative).",
        "days_between(start_date, leave_date)",
    ),
    _spec(
        "prorate",
        (
            Param("start", DATE),
            Param("end", DATE),
            Param("period_start", DATE),
            Param("period_end", DATE),
        ),
        4,
        4,
        Type.DECIMAL,
        "Share (0..1) of the period covered by start..end, inclusive days; null start "
        "means period start, null end means period end.",
        "prorate(start_date, leave_date, period_start, period_end)",
    ),
    _spec(
        "sum_over",
        (Param("x", DECIMAL), Param("key", ANY_TYPE)),
        1,
        2,
        Type.DECIMAL,
        "Sum of x over all rows that evaluate the call, or over those sharing key; nulls skipped.",
        "sum_over(target_bonus, fund_ref)",
        aggregate=True,
    ),
    _spec(
        "count_over",
        (Param("key", ANY_TYPE),),
        0,
        1,
        Type.DECIMAL,
        "Number of rows that evaluate the call, or of those sharing key.",
        "count_over(fund_ref)",
        aggregate=True,
    ),
    _spec(
        "allocate",
        (Param("pool", DECIMAL), Param("weight", DECIMAL), Param("key", ANY_TYPE)),
        2,
        3,
        Type.DECIMAL,
        "Share pool in proportion to weight (per key group) so the cents add up exactly.",
        "allocate(fund_pool, points, fund_ref)",
        aggregate=True,
    ),
)

CATALOG: dict[str, FunctionSpec] = {spec.name: spec for spec in _SPECS}
"""Every callable function by name, in documentation order."""
