"""Scenario deltas: one run against another, per employee and in total (XLSX and PDF).

`compare` takes the two runs' result rows (database shape) and a step (default: the payout)
and returns exact R10 deltas; employees present in only one run are listed as added or
removed with the missing side empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from openpyxl import Workbook
from openpyxl.styles import Font

from engine import r10
from server.modules.reports.export import ResultRow
from server.modules.reports.files import put, put_row, save_workbook
from server.modules.reports.formatting import MISSING, decimal_text
from server.modules.reports.render import html_to_pdf, render_template
from server.modules.reports.statement import Branding

ZERO = Decimal("0E-10")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class DeltaLine:
    employee_ref: str
    base: Decimal | None
    scenario: Decimal | None
    status: str  # changed | unchanged | added | removed

    @property
    def delta(self) -> Decimal:
        return r10.sub(self.scenario or ZERO, self.base or ZERO)

    @property
    def delta_pct(self) -> Decimal | None:
        if not self.base:
            return None
        return r10.div(r10.mul(self.delta, HUNDRED), self.base)


@dataclass(frozen=True)
class Comparison:
    step: str
    base_label: str
    scenario_label: str
    lines: tuple[DeltaLine, ...]

    @property
    def base_total(self) -> Decimal:
        return r10.total(line.base for line in self.lines)

    @property
    def scenario_total(self) -> Decimal:
        return r10.total(line.scenario for line in self.lines)

    @property
    def delta_total(self) -> Decimal:
        return r10.sub(self.scenario_total, self.base_total)

    def count(self, status: str) -> int:
        return sum(1 for line in self.lines if line.status == status)


def _values(rows: Iterable[ResultRow], step: str) -> dict[str, Decimal | None]:
    found = {}
    for row in rows:
        raw = row["values"].get(step)
        found[str(row["employee_ref"])] = None if raw is None else Decimal(str(raw))
    return found


def compare(base_rows: Iterable[ResultRow], scenario_rows: Iterable[ResultRow], step: str,
            base_label: str = "Base", scenario_label: str = "Scenario",
            scenario_step: str | None = None) -> Comparison:
    """`scenario_step` names the step in the scenario's plan when it differs (its payout)."""
    base = _values(base_rows, step)
    scenario = _values(scenario_rows, scenario_step or step)
    lines = []
    for ref in sorted(set(base) | set(scenario)):
        if ref not in scenario:
            status = "removed"
        elif ref not in base:
            status = "added"
        else:
            status = "unchanged" if base[ref] == scenario[ref] else "changed"
        lines.append(DeltaLine(ref, base.get(ref), scenario.get(ref), status))
    return Comparison(step, base_label, scenario_label, tuple(lines))


def deltas_xlsx(comparison: Comparison) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Scenario deltas"
    put(sheet, 1, 1, f"{comparison.scenario_label} vs {comparison.base_label}: "
                     f"{comparison.step}").font = Font(bold=True, size=13)
    header = ["Employee", comparison.base_label, comparison.scenario_label, "Delta", "Delta %",
              "Status"]
    put_row(sheet, 3, header)
    for column in range(1, len(header) + 1):
        sheet.cell(row=3, column=column).font = Font(bold=True)
    row = 4
    for line in comparison.lines:
        put_row(sheet, row, [line.employee_ref, line.base, line.scenario, line.delta,
                             line.delta_pct, line.status])
        sheet.cell(row=row, column=5).number_format = PERCENT_FORMAT  # exact value, 2 shown
        row += 1
    put_row(sheet, row, ["Total", comparison.base_total, comparison.scenario_total,
                         comparison.delta_total])
    for column in range(1, 5):
        sheet.cell(row=row, column=column).font = Font(bold=True)
    sheet.freeze_panes = "B4"
    for column, width in zip("ABCDEF", (18, 18, 18, 18, 12, 12), strict=True):
        sheet.column_dimensions[column].width = width
    return save_workbook(workbook)


PERCENT_FORMAT = "0.00"


def percent_text(value: Decimal | None) -> str:
    """A delta % for people: two decimals, half away from zero (the XLSX keeps the exact
    value under a two-decimal format)."""
    if value is None:
        return MISSING
    return decimal_text(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def deltas_pdf(comparison: Comparison, branding: Branding) -> bytes:
    html = render_template("scenario_deltas.html.j2", c=comparison, percent=percent_text,
                           tenant=branding.tenant_name, primary=branding.primary,
                           accent=branding.accent)
    return html_to_pdf(html)
