"""Payout history over finalized runs: totals per period and group, with a trend chart.

Each finalized run contributes one period (its label, e.g. the plan year or the run's
finalisation date) and, per employee, a group value (fund, team or role: an input of that
employee) and the payout. Totals are exact R10 sums; JSON, XLSX (with a line chart) and
HTML/PDF (inline SVG) renderings share one `History`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.chart import LineChart, Reference
from openpyxl.styles import Font

from engine import r10
from server.modules.reports.charts import line_chart
from server.modules.reports.files import put, put_row, save_workbook
from server.modules.reports.render import html_to_pdf, render_template
from server.modules.reports.statement import Branding

GROUP_INPUTS = {"fund": "fund_ref", "team": "team", "role": "level"}
"""group_by -> the employee input that carries it (the sample plans' keys)."""
ZERO = Decimal("0E-10")
PALETTE = ("#1F3A5F", "#C8A24A", "#2E86AB", "#A23B72", "#3B8B5A", "#E07A5F", "#6C757D",
           "#8E6C8A")


@dataclass(frozen=True)
class PeriodPayouts:
    """One finalized run: its period label and (group value, payout) per employee."""

    period: str
    run_id: str
    payouts: Sequence[tuple[str | None, Decimal | None]]


@dataclass(frozen=True)
class HistoryCell:
    period: str
    group: str
    headcount: int
    total: Decimal

    def to_json(self) -> dict[str, Any]:
        return {"period": self.period, "group": self.group, "headcount": self.headcount,
                "total": r10.text(self.total)}


@dataclass(frozen=True)
class History:
    group_by: str
    periods: tuple[str, ...]
    groups: tuple[str, ...]
    cells: tuple[HistoryCell, ...]

    def total(self, period: str, group: str) -> Decimal:
        for cell in self.cells:
            if cell.period == period and cell.group == group:
                return cell.total
        return ZERO

    def series(self, group: str) -> list[Decimal]:
        return [self.total(period, group) for period in self.periods]


def payout_history(runs: Iterable[PeriodPayouts], group_by: str) -> History:
    """Aggregate runs (several runs may share a period: they add up)."""
    if group_by not in GROUP_INPUTS:
        raise ValueError(f"group_by must be one of {', '.join(GROUP_INPUTS)}, not {group_by!r}")
    totals: dict[tuple[str, str], list[Any]] = {}
    for run in runs:
        for group, payout in run.payouts:
            key = (run.period, "(none)" if group is None else str(group))
            cell = totals.setdefault(key, [0, ZERO])
            cell[0] += 1
            if payout is not None:
                cell[1] = r10.add(cell[1], payout)
    cells = tuple(HistoryCell(period, group, count, total)
                  for (period, group), (count, total) in sorted(totals.items()))
    return History(group_by, tuple(sorted({c.period for c in cells})),
                   tuple(sorted({c.group for c in cells})), cells)


def history_json(history: History) -> dict[str, Any]:
    return {"group_by": history.group_by, "periods": list(history.periods),
            "groups": list(history.groups), "cells": [c.to_json() for c in history.cells]}


def history_xlsx(history: History) -> bytes:
    """Periods down, groups across (numeric totals), and a line chart of the trend."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Payout history"
    put(sheet, 1, 1, f"Payout history by {history.group_by}").font = Font(bold=True, size=13)
    put_row(sheet, 3, ["Period", *history.groups])
    for column in range(1, len(history.groups) + 2):
        sheet.cell(row=3, column=column).font = Font(bold=True)
    for index, period in enumerate(history.periods, start=4):
        put_row(sheet, index, [period, *(history.total(period, g) for g in history.groups)])
    if history.periods and history.groups:
        chart = LineChart()
        chart.title = f"Payout trend by {history.group_by}"
        last = 3 + len(history.periods)
        chart.add_data(Reference(sheet, min_col=2, max_col=1 + len(history.groups), min_row=3,
                                 max_row=last), titles_from_data=True)
        chart.set_categories(Reference(sheet, min_col=1, min_row=4, max_row=last))
        chart.height, chart.width = 9, 18
        sheet.add_chart(chart, f"B{last + 3}")
    sheet.column_dimensions["A"].width = 16
    return save_workbook(workbook)


def history_pdf(history: History, branding: Branding) -> bytes:
    chart = line_chart(history.periods, [
        (group, PALETTE[index % len(PALETTE)], history.series(group))
        for index, group in enumerate(history.groups)
    ])
    html = render_template("history.html.j2", h=history, chart=chart,
                           tenant=branding.tenant_name, primary=branding.primary,
                           accent=branding.accent)
    return html_to_pdf(html)
