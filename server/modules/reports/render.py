"""Statement renderers: Jinja2 HTML, Typst PDF (WeasyPrint kept for comparison), openpyxl
XLSX, from one `Statement`.

Templates live in the top-level `templates/` folder (ARCHITECTURE.md). The Jinja
environment autoescapes everything, so hostile names and expressions stay text.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill

from server.modules.reports.files import put, put_row, save_workbook
from server.modules.reports.formatting import display
from server.modules.reports.statement import Statement, approval_rows

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["guard"] = display
    env.filters["number"] = display
    return env


def render_template(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def statement_html(statement: Statement) -> str:
    """The statement as one self-contained HTML page (styles inline, no external fetches)."""
    return render_template(
        "statement.html.j2",
        s=statement,
        approvals=approval_rows(statement.run),
        primary=statement.branding.primary,
        accent=statement.branding.accent,
    )


@lru_cache(maxsize=1)
def _font_config() -> Any:
    """One font configuration per process: building it per document costs ~15% of a page."""
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


def _refuse_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    raise ValueError(f"external resource refused: {url}")


def html_to_pdf(html: str) -> bytes:
    """PDF bytes from self-contained HTML. URLs are never fetched (no SSRF from content)."""
    import weasyprint  # heavy import: only where PDFs are made

    document = weasyprint.HTML(string=html, url_fetcher=_refuse_fetch)
    return document.write_pdf(font_config=_font_config())


def statement_pdf_weasyprint(statement: Statement) -> bytes:
    """The HTML statement printed by WeasyPrint: kept to measure against (bench/reports.py)
    and for one-off HTML reports; statements themselves are Typst letters."""
    return html_to_pdf(statement_html(statement))


def statement_pdf(statement: Statement) -> bytes:
    """The statement letter as PDF (Typst: a few ms of CPU, see typst_render)."""
    from server.modules.reports.typst_render import statement_pdf_typst

    return statement_pdf_typst(statement)


def _heading(sheet: Any, row: int, text: str, colour: str) -> None:
    cell = put(sheet, row, 1, text)
    cell.font = Font(bold=True, size=12, color=colour.lstrip("#"))


def _table_header(sheet: Any, row: int, names: list[str], colour: str) -> None:
    put_row(sheet, row, names)
    for column in range(1, len(names) + 1):
        cell = sheet.cell(row=row, column=column)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor=colour.lstrip("#"))


def statement_workbook(statement: Statement) -> Workbook:
    """The statement as a one-sheet workbook: same content as the PDF, numeric cells."""
    s = statement
    primary = s.branding.primary
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Statement"
    put(sheet, 1, 1, s.branding.tenant_name).font = Font(bold=True, size=14,
                                                          color=primary.lstrip("#"))
    put(sheet, 2, 1, "Bonus statement" + (" (DRAFT)" if s.draft else "")).font = Font(
        bold=True, size=12, color="C0392B" if s.draft else "000000")
    facts: list[tuple[str, Any]] = [
        ("Employee", s.employee_ref),
        ("Fund", s.fund_ref),
        ("Plan", s.plan_name),
        ("Plan version", s.plan_version),
        ("Period", s.period),
        ("Currency", s.currency),
        ("Approval state", s.run.status_label),
        ("Payout", s.payout.value),
        ("Of which deferred", s.deferred.value if s.deferred else None),
        ("Plan hash", s.plan_hash),
        ("Run", s.run.run_id),
        ("Snapshot hash", s.run.snapshot_hash),
        ("Results hash", s.run.results_hash),
    ]
    if s.run.scenario_name:
        facts.insert(6, ("Scenario", s.run.scenario_name))
    row = 4
    for label, value in facts:
        put(sheet, row, 1, label).font = Font(color="555555")
        put(sheet, row, 2, value)
        row += 1
    row += 1
    _heading(sheet, row, "Inputs", primary)
    _table_header(sheet, row + 1, ["Input", "Key", "Value"], primary)
    row += 2
    for line in s.inputs:
        put_row(sheet, row, [line.label, line.key, line.value])
        row += 1
    if s.parameters:
        row += 1
        _heading(sheet, row, "Plan parameters", primary)
        _table_header(sheet, row + 1, ["Parameter", "Value"], primary)
        row += 2
        for line in s.parameters:
            put_row(sheet, row, [line.key, line.value])
            row += 1
    row += 1
    _heading(sheet, row, "Calculation", primary)
    _table_header(sheet, row + 1, ["Order", "Step", "Expression", "Guard", "Guard value",
                                   "Value", "Notes", "Diagnostics"], primary)
    row += 2
    for step in s.steps:
        put_row(sheet, row, [step.order, step.name, step.expr, step.condition,
                             step.condition_value, step.value, step.notes,
                             "; ".join(step.diagnostics) or None])
        sheet.cell(row=row, column=1).number_format = "0"
        sheet.cell(row=row, column=3).alignment = Alignment(wrap_text=True, vertical="top")
        if step.name == s.payout.key:
            for column in (2, 6):
                sheet.cell(row=row, column=column).font = Font(bold=True)
        row += 1
    history = approval_rows(s.run)
    if history:
        row += 1
        _heading(sheet, row, "Approvals", primary)
        _table_header(sheet, row + 1, ["State", "By", "At"], primary)
        row += 2
        for entry in history:
            put_row(sheet, row, list(entry))
            row += 1
    for column, width in zip("ABCDEFGH", (26, 22, 60, 28, 12, 20, 40, 30), strict=True):
        sheet.column_dimensions[column].width = width
    return workbook


def statement_xlsx(statement: Statement) -> bytes:
    return save_workbook(statement_workbook(statement))
