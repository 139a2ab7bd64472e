"""Pool vs target: per pool (each `allocate` step) and per group (usually the fund).

For every `allocate(pool, weight, key)` step of the plan and every group of `key`:
- pool amount: the group's `pool` value (an input, parameter or step; constant in a group),
- sum of targets: the group's sum of the target step (default `target_bonus`),
- allocated: the group's sum of the payout step (what is actually paid, after caps),
- variance: allocated - pool (negative: pool left unpaid, e.g. because of caps),
- scale factor: allocated / sum of targets (payout as a multiple of target; none if 0).
Exact R10 arithmetic throughout; a total row per pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

import polars as pl
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.series import SeriesLabel
from openpyxl.styles import Font

from engine import r10
from engine.dsl.ast import Call, Name, Node
from engine.plan import CompiledPlan
from server.modules.reports.charts import bar_chart
from server.modules.reports.export import ResultRow
from server.modules.reports.files import put, put_row, save_workbook
from server.modules.reports.render import html_to_pdf, render_template
from server.modules.reports.statement import Branding

TARGET_STEP = "target_bonus"
ZERO = Decimal("0E-10")
TOTAL = "Total"


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


def _lookup(plan: CompiledPlan, name: str, inputs: Mapping[str, Any], values: Mapping[str, Any]
            ) -> Any:
    if name in plan.parameters:
        return plan.parameters[name][1]
    if name in values:
        return values[name]
    return inputs.get(name)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else r10.r10(Decimal(str(value)))


def _line(spec: PoolSpec, group: str, members: list[tuple[Any, Decimal | None, Decimal | None]]
          ) -> PoolLine:
    pools = [pool for pool, _, _ in members if pool is not None]
    pool_amount = pools[0] if pools else None
    targets = r10.total(target for _, target, _ in members)
    allocated = r10.total(paid for _, _, paid in members)
    return PoolLine(
        spec.step, group, len(members), pool_amount, targets, allocated,
        None if pool_amount is None else r10.sub(allocated, pool_amount),
        None if targets == 0 else r10.div(allocated, targets),
    )


def pool_vs_target(plan: CompiledPlan, inputs: pl.DataFrame, rows: Iterable[ResultRow],
                   target_step: str = TARGET_STEP) -> list[PoolLine]:
    """Lines per pool step and group (groups sorted), each pool followed by its total."""
    if target_step not in {step.name for step in plan.steps}:
        raise ValueError(f"target step '{target_step}' is not a step of the plan")
    by_ref = {str(row["employee_ref"]): row for row in inputs.iter_rows(named=True)}
    results = list(rows)
    lines: list[PoolLine] = []
    for spec in pool_specs(plan):
        groups: dict[str, list[tuple[Any, Decimal | None, Decimal | None]]] = {}
        for row in results:
            values, person = row["values"], by_ref.get(str(row["employee_ref"]), {})
            key = "all" if spec.key is None else _lookup(plan, spec.key, person, values)
            groups.setdefault(str(key), []).append((
                _decimal(_lookup(plan, spec.pool, person, values)),
                _decimal(values.get(target_step)),
                _decimal(values.get(plan.payout)),
            ))
        group_lines = [_line(spec, group, groups[group]) for group in sorted(groups)]
        lines.extend(group_lines)
        pool_total = r10.total(line.pool_amount for line in group_lines)
        targets = r10.total(line.target_sum for line in group_lines)
        allocated = r10.total(line.allocated for line in group_lines)
        lines.append(PoolLine(spec.step, TOTAL, sum(line.headcount for line in group_lines),
                              pool_total, targets, allocated, r10.sub(allocated, pool_total),
                              None if targets == 0 else r10.div(allocated, targets)))
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
