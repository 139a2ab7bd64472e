"""Calculation tapes for many employees from ONE evaluation.

`engine.backends.reference.explain` evaluates the whole frame for a single employee (the
aggregates need every row), so N statements would cost N evaluations. `explain_all` runs the
reference evaluation once and cuts every requested employee's tape out of it, entry for entry
what `explain(...).to_dict()` returns (a parity test keeps the two identical).

It reads the reference backend's evaluation state (`_execute`); the engine should grow a
public `explain_many` with this body, and this module then becomes a one-line call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from engine.backends import reference
from engine.backends.reference import Tape, TapeEntry
from engine.plan import CompiledPlan


def explain_all(
    plan: CompiledPlan,
    frame: pl.DataFrame,
    employee_refs: Iterable[str] | None = None,
    parameters: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """employee_ref -> tape dict (ENGINE.md §8) for `employee_refs` (default: everyone).
    Raises KeyError naming the first employee that is not in the frame."""
    refs = [str(ref) for ref in frame["employee_ref"].to_list()]
    rows = {ref: index for index, ref in enumerate(refs)}
    wanted = refs if employee_refs is None else list(employee_refs)
    for ref in wanted:
        if ref not in rows:
            raise KeyError(f"employee '{ref}' is not in the data")
    run = reference._execute(plan, frame, parameters)
    specs = {spec.name: spec for spec in plan.document.steps}
    steps = {step.name: step for step in plan.steps}
    tapes = {}
    for ref in wanted:
        row = rows[ref]
        entries = []
        for name in plan.display_order:
            spec, step = specs[name], steps[name]
            condition = run.conditions[name]
            entries.append(TapeEntry(
                step=name,
                order=step.order,
                expr=spec.expr,
                condition=spec.condition,
                condition_value=None if condition is None else condition[row],
                bindings={read: run.columns[read][row] for read in sorted(step.reads)},
                result=run.columns[name][row],
                diagnostics=tuple(d for d in run.diagnostics[row] if d["step"] == name),
            ))
        tape = Tape(ref, plan.document.name, plan.plan_hash, plan.payout,
                    run.columns[plan.payout][row], tuple(entries))
        tapes[ref] = tape.to_dict()
    return tapes
