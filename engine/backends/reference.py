"""The Decimal reference evaluator: slow, obvious and exact (ENGINE.md §4-6, docs/engine.md).

Steps are evaluated in evaluation order, one column at a time, so aggregates see the whole
data set. Every node is evaluated under a *taken* mask: the rows on which that node is
actually reached (guards, `if` branches and `&&`/`||` short circuits applied). A node
yields null on rows it is not taken, records diagnostics only on taken rows with non-null
operands, and aggregates only over taken rows. The Polars backend must match this cell for
cell, diagnostic for diagnostic.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, localcontext
from functools import partial
from typing import Any

import polars as pl

from engine import r10
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
    Type,
    Unary,
)
from engine.plan import CompiledPlan, CompiledStep, Value, coerce_value

Column = list[Any]
Mask = list[bool]
CENT = Decimal("0.01")


@dataclass
class _StepState:
    """Per-step bookkeeping while one step is evaluated."""

    name: str
    codes: list[set[str]]
    first_overflow: int | None = None


@dataclass
class _Run:
    """The state of one evaluation: every column computed so far and the diagnostics."""

    plan: CompiledPlan
    size: int
    refs: list[str]
    columns: dict[str, Column]
    diagnostics: list[list[dict[str, str]]]
    conditions: dict[str, Column | None] = field(default_factory=dict)
    current: _StepState | None = None

    def flag(self, row: int, code: str) -> None:
        assert self.current is not None
        self.current.codes[row].add(code)

    def check_range(self, row: int, value: Decimal) -> Decimal:
        """Note an overflow (|x| >= 1e28) on a taken row; the step fails after evaluation.

        The out-of-range value is replaced by 0 for the rest of the step (as the Polars
        backend does), so it cannot push a later aggregate of the same step out of range
        and get another employee named than the one whose value overflowed."""
        if not r10.overflows(value):
            return value
        state = self.current
        assert state is not None
        if state.first_overflow is None or row < state.first_overflow:
            state.first_overflow = row
        return r10.ZERO


def evaluate(
    plan: CompiledPlan, frame: pl.DataFrame, parameters: dict[str, Any] | None = None
) -> EvalResult:
    """Evaluate every step over every row; returns the EvalResult frame (base.py)."""
    run = _execute(plan, frame, parameters)
    return EvalResult(_result_frame(run))


def _execute(plan: CompiledPlan, frame: pl.DataFrame, parameters: dict[str, Any] | None) -> _Run:
    """All steps over all rows, in a precision-100 context (R10 rule 7) so that no
    intermediate (negation, abs, a remainder) is ever rounded to 28 digits."""
    size = frame.height
    refs = [str(ref) for ref in frame["employee_ref"].to_list()]
    with localcontext(r10.CONTEXT):
        run = _Run(
            plan, size, refs, _input_columns(plan, frame, parameters), [[] for _ in range(size)]
        )
        for step in plan.steps:
            _evaluate_step(run, step)
        _add_null_payout(run)
    return run


def _input_columns(
    plan: CompiledPlan, frame: pl.DataFrame, overrides: dict[str, Any] | None
) -> dict[str, Column]:
    """Input columns as Python values (decimals re-quantised to R10), plus parameters."""
    columns: dict[str, Column] = {}
    wanted = set().union(*(step.reads for step in plan.steps))
    for name, kind in plan.input_types.items():
        if name in plan.parameters or name not in wanted:
            continue
        if name not in frame.columns:
            raise KeyError(f"input column '{name}' is missing from the frame")
        series = frame[name]
        if kind == Type.DECIMAL:
            if not (isinstance(series.dtype, pl.Decimal) or series.dtype.is_integer()):
                raise TypeError(
                    f"input column '{name}' is {series.dtype}; decimal inputs must be "
                    "Decimal (never float)"
                )
            values = [None if v is None else r10.r10(Decimal(v)) for v in series.to_list()]
        else:
            values = series.to_list()
        columns[name] = values
    for name, value in _parameter_values(plan, overrides).items():
        columns[name] = [value] * frame.height
    return columns


def _parameter_values(plan: CompiledPlan, overrides: dict[str, Any] | None) -> dict[str, Value]:
    values = {name: value for name, (_, value) in plan.parameters.items()}
    dtypes = {spec.key: spec.dtype for spec in plan.document.parameters}
    for name, raw in (overrides or {}).items():
        if name not in dtypes:
            raise KeyError(f"unknown parameter '{name}'")
        values[name] = coerce_value(dtypes[name], raw)
    return values


def _evaluate_step(run: _Run, step: CompiledStep) -> None:
    run.current = _StepState(step.name, [set() for _ in range(run.size)])
    everywhere = [True] * run.size
    condition = None
    if step.condition is not None:
        condition = _eval(run, step.condition, everywhere)
        taken = [c is True for c in condition]
    else:
        taken = everywhere
    values = _eval(run, step.expr, taken)
    if condition is not None:
        default = _literal_value(step.default)
        values = [
            v if c is True else (default if c is False else None)
            for v, c in zip(values, condition, strict=True)
        ]
    state = run.current
    if state.first_overflow is not None:
        raise ValueOverflow(step.name, run.refs[state.first_overflow])
    for row, codes in enumerate(state.codes):
        for code in sorted(codes):
            run.diagnostics[row].append(
                {"step": step.name, "code": code, "message": DIAGNOSTIC_MESSAGES[code]}
            )
    run.columns[step.name] = values
    run.conditions[step.name] = condition
    run.current = None


def _literal_value(node: Node | None) -> Value | None:
    match node:
        case None:
            return None
        case Number(value=value):
            return r10.r10(value)
        case String(value=value) | Boolean(value=value) | DateLiteral(value=value):
            return value
    raise TypeError(f"not a literal: {node!r}")


def _eval(run: _Run, node: Node, taken: Mask) -> Column:
    """Values of `node` on every row: null where not taken."""
    match node:
        case (
            Number(value=value)
            | String(value=value)
            | Boolean(value=value)
            | DateLiteral(value=value)
        ):
            literal = r10.r10(value) if isinstance(node, Number) else value
            return [literal if t else None for t in taken]
        case Name(ident=ident):
            column = run.columns[ident]
            return [v if t else None for v, t in zip(column, taken, strict=True)]
        case Unary(op=op, operand=operand):
            values = _eval(run, operand, taken)
            if op == "+":
                return values
            return [None if v is None else r10.r10(-v) for v in values]
        case Binary(op="&&" | "||"):
            return _eval_logical(run, node, taken)
        case Binary(op="^", left=left, right=Number(value=exponent)):
            return _eval_power(run, _eval(run, left, taken), int(exponent))
        case Binary(op=op, left=left, right=right):
            return _eval_binary(run, op, _eval(run, left, taken), _eval(run, right, taken))
        case If(cond=cond, then=then, else_=else_):
            conditions = _eval(run, cond, taken)
            then_values = _eval(run, then, [c is True for c in conditions])
            else_values = _eval(run, else_, [c is False for c in conditions])
            return [
                t if c is True else (e if c is False else None)
                for c, t, e in zip(conditions, then_values, else_values, strict=True)
            ]
        case Call(func=func, args=args):
            return FUNCTIONS[func](run, node, [_eval(run, arg, taken) for arg in args], taken)
    raise TypeError(f"cannot evaluate {node!r}")


def _eval_logical(run: _Run, node: Binary, taken: Mask) -> Column:
    """Three-valued && / ||; the right side is only taken where the left does not decide."""
    left = _eval(run, node.left, taken)
    deciding = node.op == "||"  # the left value that decides the result on its own
    right_taken = [t and v is not deciding for t, v in zip(taken, left, strict=True)]
    right = _eval(run, node.right, right_taken)
    out: Column = []
    for t, lv, rv in zip(taken, left, right, strict=True):
        if not t:
            out.append(None)
        elif lv is deciding or rv is deciding:
            out.append(deciding)
        elif lv is None or rv is None:
            out.append(None)
        else:
            out.append(not deciding)
    return out


def _eval_power(run: _Run, bases: Column, exponent: int) -> Column:
    """x ^ n as repeated multiplication, each product rounded (R10 rule 5); x ^ 0 = 1."""
    out: Column = []
    for row, base in enumerate(bases):
        if base is None:
            out.append(None)
            continue
        result = r10.ONE
        for _ in range(exponent):
            result = run.check_range(row, r10.mul(result, base))
        out.append(result)
    return out


_ARITHMETIC: dict[str, Callable[[Decimal, Decimal], Decimal]] = {
    "+": r10.add,
    "-": r10.sub,
    "*": r10.mul,
    "/": r10.div,
    "%": r10.mod,
}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _eval_binary(run: _Run, op: str, left: Column, right: Column) -> Column:
    out: Column = []
    if op in _COMPARE:
        compare = _COMPARE[op]
        return [
            None if a is None or b is None else compare(a, b)
            for a, b in zip(left, right, strict=True)
        ]
    apply = _ARITHMETIC[op]
    divides = op in ("/", "%")
    for row, (a, b) in enumerate(zip(left, right, strict=True)):
        if a is None or b is None:
            out.append(None)
        elif divides and b.is_zero():
            run.flag(row, DIVISION_BY_ZERO)
            out.append(None)
        else:
            out.append(run.check_range(row, apply(a, b)))
    return out


# --- catalog functions: one case per FunctionSpec in engine.catalog -------------------------

Function = Callable[[_Run, Call, list[Column], Mask], Column]


def _strict(
    compute: Callable[..., Any], run: _Run, node: Call, args: list[Column], taken: Mask
) -> Column:
    """A strict row-wise function: null if any argument is null, else compute(*values)."""
    out: Column = []
    for row, values in enumerate(zip(*args, strict=True)):
        if any(v is None for v in values):
            out.append(None)
            continue
        result = compute(*values)
        out.append(run.check_range(row, result) if isinstance(result, Decimal) else result)
    return out


def _round(run: _Run, node: Call, args: list[Column], taken: Mask) -> Column:
    places = int(node.args[1].value)  # type: ignore[attr-defined]  # checked literal
    return [
        None if v is None else run.check_range(row, r10.round_to(v, places))
        for row, v in enumerate(args[0])
    ]


def _pct_change(run: _Run, node: Call, args: list[Column], taken: Mask) -> Column:
    out: Column = []
    for row, (cur, prev) in enumerate(zip(args[0], args[1], strict=True)):
        if cur is None or prev is None:
            out.append(None)
        elif prev.is_zero():
            run.flag(row, DIVISION_BY_ZERO)
            out.append(None)
        else:
            difference = run.check_range(row, r10.sub(cur, prev))
            out.append(run.check_range(row, r10.div(difference, prev)))
    return out


def _prorate(run: _Run, node: Call, args: list[Column], taken: Mask) -> Column:
    out: Column = []
    for row, (start, end, period_start, period_end) in enumerate(zip(*args, strict=True)):
        if not taken[row] or period_start is None or period_end is None:
            out.append(None)
            continue
        start = period_start if start is None else start
        end = period_end if end is None else end
        total = (period_end - period_start).days + 1
        if total <= 0:
            run.flag(row, INVALID_PERIOD)
            out.append(None)
            continue
        covered = max(0, (min(end, period_end) - max(start, period_start)).days + 1)
        out.append(r10.div(Decimal(covered), Decimal(total)))
    return out


def _days(a: date, b: date) -> Decimal:
    return r10.r10(Decimal((b - a).days))


def _groups(taken: Mask, keys: Column | None) -> dict[Hashable, list[int]]:
    """Taken rows by group key (one group when there is no key); null keys excluded."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for row, is_taken in enumerate(taken):
        if not is_taken:
            continue
        key = None if keys is None else keys[row]
        if keys is not None and key is None:
            continue
        groups[key].append(row)
    return groups


def _sum_over(run: _Run, node: Call, args: list[Column], taken: Mask) -> Column:
    values = args[0]
    out: Column = [None] * run.size
    for rows in _groups(taken, args[1] if len(args) > 1 else None).values():
        total = r10.ZERO
        for row in rows:
            if values[row] is not None:
                total = r10.add(total, values[row])
        for row in rows:
            out[row] = run.check_range(row, total)
    return out


def _count_over(run: _Run, node: Call, args: list[Column], taken: Mask) -> Column:
    out: Column = [None] * run.size
    for rows in _groups(taken, args[0] if args else None).values():
        count = r10.r10(Decimal(len(rows)))
        for row in rows:
            out[row] = count
    return out


def _allocate(run: _Run, node: Call, args: list[Column], taken: Mask) -> Column:
    pools, weights = args[0], args[1]
    out: Column = [None] * run.size
    for rows in _groups(taken, args[2] if len(args) > 2 else None).values():
        included = []
        for row in rows:
            if pools[row] is None or weights[row] is None:
                continue
            if weights[row] < 0:
                run.flag(row, NEGATIVE_WEIGHT)
                continue
            included.append(row)
        _allocate_group(run, included, pools, weights, out)
    return out


def _allocate_group(
    run: _Run, rows: list[int], pools: Column, weights: Column, out: Column
) -> None:
    """Largest-remainder allocation of one group's pool (docs/engine.md §4)."""
    if not rows:
        return
    if len({pools[row] for row in rows}) > 1:
        for row in rows:
            run.flag(row, POOL_NOT_CONSTANT)
        return
    pool = pools[rows[0]]
    weight_sum = sum((weights[row] for row in rows), r10.ZERO)
    for row in rows:
        run.check_range(row, weight_sum)
    if weight_sum.is_zero():
        for row in rows:
            run.flag(row, DIVISION_BY_ZERO)
        return
    floors: dict[int, Decimal] = {}
    remainders: list[tuple[Decimal, str, int]] = []
    for row in rows:
        raw = r10.div(run.check_range(row, r10.mul(pool, weights[row])), weight_sum)
        floors[row] = r10.floor_to(raw, 2)
        remainders.append((raw - floors[row], run.refs[row], row))
    leftover = r10.floor_to(pool, 2) - sum(floors.values(), r10.ZERO)
    cents = max(0, min(len(rows), int(leftover / CENT)))
    remainders.sort(key=lambda item: (-item[0], item[1]))
    for _, _, row in remainders[:cents]:
        floors[row] = r10.add(floors[row], CENT)
    for row in rows:
        out[row] = run.check_range(row, floors[row])


def _min(*values: Any) -> Any:
    return min(values)


def _max(*values: Any) -> Any:
    return max(values)


def _abs(x: Decimal) -> Decimal:
    return r10.r10(abs(x))


def _not(value: bool) -> bool:
    return not value


def _round2(x: Decimal) -> Decimal:
    return r10.round_to(x, 2)


def _clip(x: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return min(max(x, low), high)


def _cap_floor(x: Decimal, cap: Decimal, floor: Decimal) -> Decimal:
    return min(max(x, floor), cap)


def _hurdle(perf: Decimal, rate: Decimal) -> Decimal:
    return r10.ZERO if perf < rate else perf


def _pct(x: Decimal) -> Decimal:
    return r10.div(x, Decimal(100))


FUNCTIONS: dict[str, Function] = {
    "min": partial(_strict, _min),
    "max": partial(_strict, _max),
    "abs": partial(_strict, _abs),
    "not": partial(_strict, _not),
    "round2": partial(_strict, _round2),
    "round": _round,
    "clip": partial(_strict, _clip),
    "cap_floor": partial(_strict, _cap_floor),
    "hurdle": partial(_strict, _hurdle),
    "pct": partial(_strict, _pct),
    "pct_change": _pct_change,
    "days_between": partial(_strict, _days),
    "prorate": _prorate,
    "sum_over": _sum_over,
    "count_over": _count_over,
    "allocate": _allocate,
}
"""One implementation per catalog function (engine.catalog.CATALOG has the same keys)."""
if set(FUNCTIONS) != set(CATALOG):  # a catalog entry without a case here is a bug
    raise RuntimeError(f"reference backend and catalog disagree: {set(FUNCTIONS) ^ set(CATALOG)}")


# --- null payout and the result frame -------------------------------------------------------


def _add_null_payout(run: _Run) -> None:
    """docs/engine.md §7: one null_payout diagnostic per row whose payout is null."""
    plan = run.plan
    relevant = _with_dependencies(plan, plan.payout)
    chain = [step.name for step in plan.steps if step.name in relevant]
    payout_values = run.columns[plan.payout]
    for row in range(run.size):
        if payout_values[row] is not None:
            continue
        first = next(name for name in chain if run.columns[name][row] is None)
        codes = [d["code"] for d in run.diagnostics[row] if d["step"] == first]
        message = null_payout_message(plan.payout, first, codes[0] if codes else None)
        run.diagnostics[row].append({"step": plan.payout, "code": NULL_PAYOUT, "message": message})


def _with_dependencies(plan: CompiledPlan, name: str) -> set[str]:
    seen = {name}
    pending = [name]
    while pending:
        for dependency in plan.dependencies[pending.pop()]:
            if dependency not in seen:
                seen.add(dependency)
                pending.append(dependency)
    return seen


def _result_frame(run: _Run) -> pl.DataFrame:
    plan = run.plan
    types = {step.name: step.type for step in plan.steps}
    series = [pl.Series("employee_ref", run.refs, dtype=pl.String)]
    for name in plan.display_order:
        series.append(pl.Series(name, run.columns[name], dtype=POLARS_TYPES[types[name]]))
    series.append(_diagnostics_series(run.diagnostics))
    return pl.DataFrame(series)


def _diagnostics_series(diagnostics: list[list[dict[str, str]]]) -> pl.Series:
    """The per-row diagnostic lists as one DIAGNOSTIC_DTYPE column.

    Built from flat columns and grouped, because converting a Python list of lists of
    dicts row by row costs seconds on large frames."""
    flat: dict[str, list[Any]] = {"row": [], "step": [], "code": [], "message": []}
    for row, entries in enumerate(diagnostics):
        for entry in entries:
            flat["row"].append(row)
            for key in ("step", "code", "message"):
                flat[key].append(entry[key])
    entries = pl.DataFrame(
        flat, schema={"row": pl.Int64, "step": pl.String, "code": pl.String, "message": pl.String}
    )
    grouped = entries.group_by("row").agg(pl.struct("step", "code", "message").alias("d"))
    rows = pl.DataFrame({"row": pl.int_range(len(diagnostics), eager=True, dtype=pl.Int64)})
    column = rows.join(grouped, on="row", how="left", maintain_order="left")["d"]
    return (
        column.fill_null(pl.lit([], dtype=DIAGNOSTIC_DTYPE))
        .cast(DIAGNOSTIC_DTYPE)
        .alias("diagnostics")
    )


# --- the calculation tape -------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return r10.text(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class TapeEntry:
    """One step of one employee's calculation (ENGINE.md §8)."""

    step: str
    order: int
    expr: str
    condition: str | None
    condition_value: bool | None
    bindings: dict[str, Any]
    result: Any
    diagnostics: tuple[dict[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "order": self.order,
            "expr": self.expr,
            "condition": self.condition,
            "condition_value": self.condition_value,
            "bindings": {name: _json_value(v) for name, v in self.bindings.items()},
            "result": _json_value(self.result),
            "diagnostics": [dict(d) for d in self.diagnostics],
        }


@dataclass(frozen=True)
class Tape:
    """Every step of one employee's calculation, in display order, and the payout."""

    employee_ref: str
    plan_name: str
    plan_hash: str
    payout_step: str
    payout: Any
    entries: tuple[TapeEntry, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "employee_ref": self.employee_ref,
            "plan_name": self.plan_name,
            "plan_hash": self.plan_hash,
            "payout_step": self.payout_step,
            "payout": _json_value(self.payout),
            "steps": [entry.to_dict() for entry in self.entries],
        }


def explain(
    plan: CompiledPlan,
    frame: pl.DataFrame,
    employee_ref: str,
    parameters: dict[str, Any] | None = None,
) -> Tape:
    """The calculation tape of one employee. The whole frame is evaluated (aggregates need
    every row); raises KeyError if the employee is not in the frame."""
    return explain_many(plan, frame, [employee_ref], parameters)[employee_ref]


def explain_many(
    plan: CompiledPlan,
    frame: pl.DataFrame,
    employee_refs: Iterable[str] | None = None,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Tape]:
    """Tapes of many employees (default: everyone) cut from ONE evaluation of the frame, so
    N statements or test vectors cost one evaluation, not N. Raises KeyError naming the
    first employee that is not in the frame."""
    rows = {str(ref): index for index, ref in enumerate(frame["employee_ref"].to_list())}
    wanted = list(rows) if employee_refs is None else [str(ref) for ref in employee_refs]
    for ref in wanted:
        if ref not in rows:
            raise KeyError(f"employee '{ref}' is not in the data")
    run = _execute(plan, frame, parameters)
    return {ref: _tape(plan, run, ref, rows[ref]) for ref in wanted}


def _tape(plan: CompiledPlan, run: _Run, employee_ref: str, row: int) -> Tape:
    specs = {spec.name: spec for spec in plan.document.steps}
    steps = {step.name: step for step in plan.steps}
    entries = []
    for name in plan.display_order:
        spec, step = specs[name], steps[name]
        condition = run.conditions[name]
        entries.append(
            TapeEntry(
                step=name,
                order=step.order,
                expr=spec.expr,
                condition=spec.condition,
                condition_value=None if condition is None else condition[row],
                bindings={read: run.columns[read][row] for read in sorted(step.reads)},
                result=run.columns[name][row],
                diagnostics=tuple(d for d in run.diagnostics[row] if d["step"] == name),
            )
        )
    return Tape(
        employee_ref,
        plan.document.name,
        plan.plan_hash,
        plan.payout,
        run.columns[plan.payout][row],
        tuple(entries),
    )
