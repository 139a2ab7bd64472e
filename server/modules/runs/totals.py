"""A run's totals (`comp.run_totals.totals`), computed once from the evaluated frame.

Shape (every amount an R10 string, every count an integer):

    headcount, currency, payout_step, total_payout, null_payouts, rows_with_diagnostics,
    diagnostics           {code: count}
    diagnostics_by_step   {step: {code: count}}
    steps                 {decimal step: {"sum": amount, "nulls": count}}
    pools                 one entry per allocate(pool, weight[, key]) step:
        {step, pool, weight, key, total: {...}, groups: [{key, headcount, pool_amount,
         allocated, unallocated, paid, targets: {step: sum}}]}
    breakdowns            {text input: [{value, headcount, payout, null_payouts}]}

"targets" are the decimal steps whose name contains "target" (the sample plan's
`target_bonus`), so pool vs allocated vs target can be read per pool and per fund.
Breakdowns cover each text input with at most MAX_GROUPS distinct values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import polars as pl

from engine import r10
from engine.backends.base import EvalResult
from engine.dsl.ast import Binary, Call, If, Name, Node, Type, Unary
from engine.plan import CompiledPlan

DEC = pl.Decimal(38, 10)
MAX_GROUPS = 1000
ALL = "__all__"


def _amount(value: Any) -> str | None:
    if value is None:
        return None
    return r10.text(r10.r10(Decimal(value)))


def _calls(node: Node | None) -> Iterator[Call]:
    if node is None:
        return
    if isinstance(node, Call):
        yield node
        for arg in node.args:
            yield from _calls(arg)
    elif isinstance(node, Binary):
        yield from _calls(node.left)
        yield from _calls(node.right)
    elif isinstance(node, Unary):
        yield from _calls(node.operand)
    elif isinstance(node, If):
        for part in (node.cond, node.then, node.else_):
            yield from _calls(part)


def _diagnostic_counts(frame: pl.DataFrame) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    exploded = frame.select(pl.col("diagnostics").explode()).drop_nulls()
    if exploded.height == 0:
        return {}, {}
    flat = exploded.unnest("diagnostics")
    by_code = dict(flat.group_by("code").len().sort("code").iter_rows())
    by_step: dict[str, dict[str, int]] = {}
    for step, code, count in flat.group_by("step", "code").len().sort("step", "code").iter_rows():
        by_step.setdefault(step, {})[code] = count
    return by_code, by_step


def _column_for(name: str, table: pl.DataFrame, parameters: Mapping[str, Any]) -> pl.Expr | None:
    if name in table.columns:
        return pl.col(name)
    if name in parameters:
        return pl.lit(parameters[name], dtype=DEC)
    return None


def _pool_entry(plan: CompiledPlan, step: str, call: Call, table: pl.DataFrame,
                parameters: Mapping[str, Any], targets: list[str]) -> dict[str, Any] | None:
    pool, weight = call.args[0], call.args[1]
    key = call.args[2] if len(call.args) > 2 else None
    if not isinstance(pool, Name) or (key is not None and not isinstance(key, Name)):
        return None
    pool_column = _column_for(pool.ident, table, parameters)
    key_column = pl.lit(ALL) if key is None else _column_for(key.ident, table, parameters)
    if pool_column is None or key_column is None:
        return None
    aggregates = [
        pl.len().alias("headcount"),
        pool_column.drop_nulls().first().cast(DEC).alias("pool_amount"),
        pl.col(step).sum().alias("allocated"),
        pl.col(plan.payout).sum().alias("paid"),
        *(pl.col(name).sum().alias(f"target:{name}") for name in targets),
    ]
    groups = (table.with_columns(key_column.cast(pl.String).alias("__key"))
              .group_by("__key").agg(aggregates).sort("__key", nulls_last=True))
    rows = [_pool_group(row, targets) for row in groups.iter_rows(named=True)]
    total = {
        "headcount": sum(row["headcount"] for row in rows),
        "pool_amount": _sum_text(row["pool_amount"] for row in rows),
        "allocated": _sum_text(row["allocated"] for row in rows),
        "paid": _sum_text(row["paid"] for row in rows),
        "targets": {name: _sum_text(row["targets"][name] for row in rows) for name in targets},
    }
    total["unallocated"] = _difference(total["pool_amount"], total["allocated"])
    return {"step": step, "pool": pool.ident, "weight": _describe(weight),
            "key": None if key is None else key.ident, "total": total, "groups": rows}


def _describe(node: Node) -> str:
    return node.ident if isinstance(node, Name) else type(node).__name__.lower()


def _pool_group(row: dict[str, Any], targets: list[str]) -> dict[str, Any]:
    pool_amount, allocated = _amount(row["pool_amount"]), _amount(row["allocated"])
    return {
        "key": None if row["__key"] == ALL else row["__key"],
        "headcount": row["headcount"],
        "pool_amount": pool_amount,
        "allocated": allocated,
        "unallocated": _difference(pool_amount, allocated),
        "paid": _amount(row["paid"]),
        "targets": {name: _amount(row[f"target:{name}"]) for name in targets},
    }


def _sum_text(values: Iterator[str | None]) -> str:
    total = sum((Decimal(v) for v in values if v is not None), Decimal(0))
    return r10.text(r10.r10(total))


def _difference(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return None
    return r10.text(r10.r10(Decimal(a) - Decimal(b)))


def _breakdowns(plan: CompiledPlan, table: pl.DataFrame) -> dict[str, list[dict[str, Any]]]:
    texts = ["fund_ref", *(k for k, t in plan.input_types.items() if t == Type.TEXT)]
    out: dict[str, list[dict[str, Any]]] = {}
    for name in dict.fromkeys(texts):
        if name not in table.columns or table[name].null_count() == table.height:
            continue
        if table[name].n_unique() > MAX_GROUPS:
            continue
        grouped = (table.group_by(name)
                   .agg(pl.len().alias("headcount"), pl.col(plan.payout).sum().alias("payout"),
                        pl.col(plan.payout).is_null().sum().alias("null_payouts"))
                   .sort(name, nulls_last=True))
        out[name] = [{"value": value, "headcount": count, "payout": _amount(payout),
                      "null_payouts": nulls} for value, count, payout, nulls in grouped.iter_rows()]
    return out


def _table(plan: CompiledPlan, inputs: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """The inputs with the step columns beside them (`frame` is row-aligned with `inputs`)."""
    step_columns = [c for c in plan.display_order if c not in inputs.columns]
    return pl.concat([inputs, frame.select(step_columns)], how="horizontal")


def decimal_steps(plan: CompiledPlan) -> list[str]:
    """The plan's decimal steps in display order."""
    names = [s.name for s in plan.steps if s.type == Type.DECIMAL]
    names.sort(key=plan.display_order.index)
    return names


def target_steps(plan: CompiledPlan) -> list[str]:
    """The decimal steps whose sums the stored pools carry per group ("targets")."""
    return [name for name in decimal_steps(plan) if "target" in name]


def pool_entries(plan: CompiledPlan, table: pl.DataFrame, parameters: Mapping[str, Any],
                 targets: list[str]) -> list[dict[str, Any]]:
    """The `pools` figures of the module docstring over `table` (inputs and step columns),
    with the sums of `targets` per group. Reports recompute these (with another target step)
    when the stored ones do not carry what they need: one implementation of the figures."""
    pools = []
    for step in plan.steps:
        for call in _calls(step.expr):
            if call.func == "allocate":
                entry = _pool_entry(plan, step.name, call, table, parameters, targets)
                if entry is not None:
                    pools.append(entry)
    return pools


def stored_pool_entries(plan: CompiledPlan, inputs: pl.DataFrame, result: EvalResult,
                        parameters: Mapping[str, Any], targets: list[str]
                        ) -> list[dict[str, Any]]:
    """`pool_entries` over stored results (rows by employee_ref), aligned with the inputs'
    row order first so every figure (the first pool value of a group too) is the one the
    run computed."""
    aligned = inputs.select(pl.col("employee_ref").cast(pl.String)).join(
        result.frame.with_columns(pl.col("employee_ref").cast(pl.String)),
        on="employee_ref", how="left", maintain_order="left")
    return pool_entries(plan, _table(plan, inputs, aligned), parameters, targets)


def compute_totals(plan: CompiledPlan, inputs: pl.DataFrame, result: EvalResult,
                   parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Every figure of the module docstring, from the inputs and the evaluated frame."""
    frame = result.frame
    table = _table(plan, inputs, frame)
    decimals = decimal_steps(plan)
    targets = target_steps(plan)
    by_code, by_step = _diagnostic_counts(frame)
    sums = frame.select(
        *(pl.col(n).sum().alias(f"sum:{n}") for n in decimals),
        *(pl.col(n).null_count().alias(f"nulls:{n}") for n in decimals),
    ).row(0, named=True) if decimals else {}
    payout = frame[plan.payout]
    return {
        "headcount": frame.height,
        "currency": plan.document.currency,
        "payout_step": plan.payout,
        "total_payout": _amount(payout.sum()) if payout.dtype != pl.Boolean else None,
        "null_payouts": payout.null_count(),
        "rows_with_diagnostics": int((frame["diagnostics"].list.len() > 0).sum()),
        "diagnostics": by_code,
        "diagnostics_by_step": by_step,
        "steps": {n: {"sum": _amount(sums[f"sum:{n}"]), "nulls": sums[f"nulls:{n}"]}
                  for n in decimals},
        "pools": pool_entries(plan, table, parameters, targets),
        "breakdowns": _breakdowns(plan, table),
    }
