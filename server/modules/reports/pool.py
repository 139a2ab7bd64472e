"""Pool vs target: per pool (each `allocate` step) and per group (usually the fund).

For every `allocate(pool, weight, key)` step of the plan and every group of `key`:
- pool amount: the group's `pool` value (an input, parameter or step; constant in a group,
  else the first non-null value in input order),
- sum of targets: the group's sum of the target step (default `target_bonus`),
- allocated: the group's sum of the payout step (what is actually paid, after caps),
- variance: allocated - pool (negative: pool left unpaid, e.g. because of caps),
- scale factor: allocated / sum of targets (payout as a multiple of target; none if 0).
Exact R10 arithmetic throughout; a total row per pool. Groups are labelled by the key's text
("all" without a key, "None" for employees whose key is null) and sorted by that label.

The per-group figures are the run's own `pools` totals (server.modules.runs.totals, stored in
`comp.run_totals` when the run finished): a report reads them when they carry the target
step, and otherwise recomputes them with the same function over the stored results.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

import polars as pl
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.series import SeriesLabel
from openpyxl.styles import Font

from engine import r10
from engine.backends.base import EvalResult
from engine.backends.polars import parameter_values
from engine.dsl.ast import Call, Name, Node, Type
from engine.plan import CompiledPlan
from server.modules.reports.charts import bar_chart
from server.modules.reports.files import put, put_row, save_workbook
from server.modules.reports.render import html_to_pdf, render_template
from server.modules.reports.statement import Branding
from server.modules.runs.totals import stored_pool_entries

TARGET_STEP = "target_bonus"
ZERO = Decimal("0E-10")
TOTAL = "Total"
ALL_GROUP = "all"


@dataclass(frozen=True)
class PoolLine:
    pool_step: str
    group: str
    headcount: int
    pool_amount: Decimal | None
    target_sum: Decimal
    allocated: Decimal
    variance: Decimal | None
    scale_factor: Decimal | None

    def to_json(self) -> dict[str, Any]:
        def text(value: Decimal | None) -> str | None:
            return None if value is None else r10.text(value)

        return {"pool_step": self.pool_step, "group": self.group, "headcount": self.headcount,
                "pool_amount": text(self.pool_amount), "target_sum": text(self.target_sum),
                "allocated": text(self.allocated), "variance": text(self.variance),
                "scale_factor": text(self.scale_factor)}


@dataclass(frozen=True)
class PoolSpec:
    step: str
    pool: str
    key: str | None


def _calls(node: Node) -> Iterator[Call]:
    if isinstance(node, Call):
        yield node
    for field in fields(node):
        value = getattr(node, field.name)
        children = value if isinstance(value, tuple) else (value,)
        for child in children:
            if isinstance(child, Node):
                yield from _calls(child)


def pool_specs(plan: CompiledPlan) -> list[PoolSpec]:
    """Every allocate step whose pool and key are plain names (what the report can show)."""
    specs = []
    for step in sorted(plan.steps, key=lambda s: s.order):
        for call in _calls(step.expr):
            if call.func != "allocate":
                continue
            pool, key = call.args[0], call.args[2] if len(call.args) > 2 else None
            if not isinstance(pool, Name) or (key is not None and not isinstance(key, Name)):
                raise ValueError(f"step '{step.name}': pool vs target needs allocate's pool and "
                                 "key to be plain names")
            specs.append(PoolSpec(step.name, pool.ident, key.ident if key else None))
    return specs


def check_target_step(plan: CompiledPlan, target_step: str) -> None:
    """The target step must be a decimal step of the plan (ValueError names it otherwise)."""
    kinds = {step.name: step.type for step in plan.steps}
    if target_step not in kinds:
        raise ValueError(f"target step '{target_step}' is not a step of the plan")
    if kinds[target_step] != Type.DECIMAL:
        raise ValueError(f"target step '{target_step}' is not a decimal step")


def _by_spec(specs: list[PoolSpec], entries: list[Mapping[str, Any]], target_step: str
             ) -> list[Mapping[str, Any]] | None:
    """The entry of each spec, in spec order; None when one is missing or lacks the target."""
    found = {(e.get("step"), e.get("pool"), e.get("key")): e for e in entries}
    chosen = [found.get((spec.step, spec.pool, spec.key)) for spec in specs]
    if any(entry is None or not _carries(entry, target_step) for entry in chosen):
        return None
    return chosen


def _carries(entry: Mapping[str, Any], target_step: str) -> bool:
    return all("paid" in group and target_step in group.get("targets", {})
               for group in entry.get("groups", []))


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else r10.r10(Decimal(value))


def _group_line(spec: PoolSpec, group: Mapping[str, Any], target_step: str) -> PoolLine:
    key = group["key"]
    label = ALL_GROUP if spec.key is None else str(key)
    pool_amount = _dec(group["pool_amount"])
    targets = _dec(group["targets"][target_step]) or ZERO
    allocated = _dec(group["paid"]) or ZERO
    return PoolLine(
        spec.step, label, group["headcount"], pool_amount, targets, allocated,
        None if pool_amount is None else r10.sub(allocated, pool_amount),
        None if targets == 0 else r10.div(allocated, targets),
    )


def pool_lines(specs: list[PoolSpec], entries: list[Mapping[str, Any]], target_step: str
               ) -> list[PoolLine] | None:
    """Lines per pool step and group (groups sorted by label), each pool followed by its
    total, from totals-shaped pool `entries`; None when they lack a pool or the target."""
    chosen = _by_spec(specs, entries, target_step)
    if chosen is None:
        return None
    lines: list[PoolLine] = []
    for spec, entry in zip(specs, chosen, strict=True):
        group_lines = sorted((_group_line(spec, group, target_step) for group in entry["groups"]),
                             key=lambda line: line.group)
        lines.extend(group_lines)
        pool_total = r10.total(line.pool_amount for line in group_lines)
        targets = r10.total(line.target_sum for line in group_lines)
        allocated = r10.total(line.allocated for line in group_lines)
        lines.append(PoolLine(spec.step, TOTAL, sum(line.headcount for line in group_lines),
                              pool_total, targets, allocated, r10.sub(allocated, pool_total),
                              None if targets == 0 else r10.div(allocated, targets)))
    return lines


def from_totals(plan: CompiledPlan, totals: Mapping[str, Any] | None,
                target_step: str = TARGET_STEP) -> list[PoolLine] | None:
    """The lines from a run's stored totals; None when they do not carry the target step
    (only steps named like "target" are stored per group) or a pool."""
    check_target_step(plan, target_step)
    return pool_lines(pool_specs(plan), list((totals or {}).get("pools") or []), target_step)


def pool_vs_target(plan: CompiledPlan, inputs: pl.DataFrame, result: EvalResult,
                   target_step: str = TARGET_STEP) -> list[PoolLine]:
    """The lines recomputed from the run's inputs and its results (any row order)."""
    check_target_step(plan, target_step)
    specs = pool_specs(plan)
    entries = stored_pool_entries(plan, inputs, result, parameter_values(plan, {}),
                                  [target_step])
    lines = pool_lines(specs, entries, target_step)
    if lines is None:
        missing = [spec.step for spec in specs]
        raise ValueError(f"pool steps {missing}: their pool or key is neither an input, a "
                         "step nor a parameter")
    return lines


# --- renderings --------------------------------------------------------------------------


def pool_json(lines: list[PoolLine]) -> list[dict[str, Any]]:
    return [line.to_json() for line in lines]


def _by_pool(lines: list[PoolLine]) -> dict[str, list[PoolLine]]:
    pools: dict[str, list[PoolLine]] = {}
    for line in lines:
        pools.setdefault(line.pool_step, []).append(line)
    return pools


def pool_html(lines: list[PoolLine], branding: Branding, title: str, run_id: str, status: str
              ) -> str:
    """HTML with one SVG bar chart and table per pool step."""
    pools = []
    for step, pool_lines in _by_pool(lines).items():
        groups = [line for line in pool_lines if line.group != TOTAL]
        chart = bar_chart([line.group for line in groups], [
            ("Pool", branding.primary, [line.pool_amount or ZERO for line in groups]),
            ("Sum of targets", "#9AA5B1", [line.target_sum for line in groups]),
            ("Allocated", branding.accent, [line.allocated for line in groups]),
        ])
        pools.append({"step": step, "lines": pool_lines, "chart": chart})
    return render_template("pool_vs_target.html.j2", pools=pools, tenant=branding.tenant_name,
                           title=title, run_id=run_id, status=status,
                           primary=branding.primary, accent=branding.accent)


def pool_pdf(lines: list[PoolLine], branding: Branding, title: str, run_id: str, status: str
             ) -> bytes:
    return html_to_pdf(pool_html(lines, branding, title, run_id, status))


POOL_COLUMNS = ["Pool step", "Group", "Headcount", "Pool", "Sum of targets", "Allocated",
                "Variance", "Scale factor"]


def pool_xlsx(lines: list[PoolLine], title: str) -> bytes:
    """A table of every line (numeric cells) and a bar chart per pool."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Pool vs target"
    put(sheet, 1, 1, title).font = Font(bold=True, size=13)
    put_row(sheet, 3, POOL_COLUMNS)
    for column in range(1, len(POOL_COLUMNS) + 1):
        sheet.cell(row=3, column=column).font = Font(bold=True)
    row = 4
    for step, pool_lines in _by_pool(lines).items():
        first = row
        for line in pool_lines:
            put_row(sheet, row, [step, line.group, line.headcount, line.pool_amount,
                                 line.target_sum, line.allocated, line.variance,
                                 line.scale_factor])
            if line.group == TOTAL:
                for column in range(1, len(POOL_COLUMNS) + 1):
                    sheet.cell(row=row, column=column).font = Font(bold=True)
            row += 1
        chart = BarChart()
        chart.type = "bar"
        chart.title = f"Pool vs target: {step}"
        for column in (4, 5, 6):
            chart.add_data(Reference(sheet, min_col=column, min_row=first, max_row=row - 2))
            chart.series[-1].tx = SeriesLabel(v=POOL_COLUMNS[column - 1])
        chart.set_categories(Reference(sheet, min_col=2, min_row=first, max_row=row - 2))
        chart.height, chart.width = 9, 18
        sheet.add_chart(chart, f"J{first}")
        row += 1
    for column, width in zip("ABCDEFGH", (18, 14, 11, 18, 18, 18, 16, 14), strict=True):
        sheet.column_dimensions[column].width = width
    return save_workbook(workbook)
