"""Scenario deltas and payout history: exact totals, numeric XLSX cells, readable PDFs."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from xml.etree import ElementTree

import pytest
from openpyxl import load_workbook

from server.modules.reports.charts import line_chart
from server.modules.reports.deltas import compare, deltas_pdf, deltas_xlsx
from server.modules.reports.formatting import decimal_text
from server.modules.reports.history import (
    PeriodPayouts,
    history_json,
    history_pdf,
    history_xlsx,
    payout_history,
)
from tests.reports.conftest import BRANDING, HOSTILE, pdf_text


def _rows(payouts: dict[str, str | None]) -> list[dict]:
    return [{"employee_ref": ref, "values": {"bonus": value}, "diagnostics": []}
            for ref, value in payouts.items()]


def test_compare_runs_per_employee_and_total() -> None:
    base = _rows({"E1": "100.0000000000", "E2": "50.5000000000", "E3": "10.0000000000"})
    scenario = _rows({"E1": "110.0000000000", "E2": "50.5000000000", "E4": "7.2500000000"})
    result = compare(base, scenario, "bonus")
    by_ref = {line.employee_ref: line for line in result.lines}
    assert [line.status for line in result.lines] == ["changed", "unchanged", "removed",
                                                      "added"]
    assert by_ref["E1"].delta == Decimal("10") and by_ref["E1"].delta_pct == Decimal("10")
    assert by_ref["E3"].delta == Decimal("-10") and by_ref["E4"].delta_pct is None
    assert result.base_total == Decimal("160.5") and result.scenario_total == Decimal("167.75")
    assert result.delta_total == Decimal("7.25")


def test_deltas_xlsx_and_pdf() -> None:
    result = compare(_rows({"E1": "100", HOSTILE: "3"}), _rows({"E1": "99.99", HOSTILE: "3"}),
                     "bonus", "2025 base", "Bigger pool")
    sheet = load_workbook(io.BytesIO(deltas_xlsx(result))).active
    rows = {row[0].value: row for row in sheet.iter_rows(min_row=4)}
    assert rows["E1"][3].data_type == "n" and rows["E1"][3].value == pytest.approx(-0.01)
    assert "'" + HOSTILE in rows and rows["Total"][3].value == pytest.approx(-0.01)
    text = pdf_text(deltas_pdf(result, BRANDING), "-layout")
    assert "Bigger pool vs 2025 base" in text and "-0.01" in text
    assert "1 changed, 1 unchanged, 0 added, 0 removed" in text


def test_history_totals_per_period_and_group() -> None:
    runs = [
        PeriodPayouts("2024", "r1", [("F1", Decimal("10.10")), ("F2", Decimal("5")),
                                     ("F1", None)]),
        PeriodPayouts("2025", "r2", [("F1", Decimal("12")), (None, Decimal("1"))]),
        PeriodPayouts("2025", "r3", [("F1", Decimal("0.01"))]),
    ]
    history = payout_history(runs, "fund")
    assert history.periods == ("2024", "2025")
    assert history.groups == ("(none)", "F1", "F2")
    assert history.total("2024", "F1") == Decimal("10.10")
    assert history.total("2025", "F1") == Decimal("12.01")
    assert history.total("2025", "F2") == 0
    cells = {(c["period"], c["group"]): c for c in history_json(history)["cells"]}
    assert cells[("2024", "F1")] == {"period": "2024", "group": "F1", "headcount": 2,
                                     "total": "10.1000000000"}
    with pytest.raises(ValueError, match="group_by"):
        payout_history(runs, "salary")
    sheet = load_workbook(io.BytesIO(history_xlsx(history))).active
    assert [c.value for c in sheet[3]] == ["Period", "(none)", "F1", "F2"]
    assert sheet["C5"].data_type == "n" and sheet["C5"].value == pytest.approx(12.01)
    assert sheet._charts
    text = pdf_text(history_pdf(history, BRANDING), "-layout")
    assert "Payout history by fund" in text and decimal_text(Decimal("12.01")) in text


def test_delta_percent_shows_two_decimals_and_keeps_the_exact_value() -> None:
    result = compare(_rows({"E1": "300"}), _rows({"E1": "301"}), "bonus")
    exact = result.lines[0].delta_pct  # 1/3 % = 0.3333333333
    assert exact == Decimal("0.3333333333")
    text = pdf_text(deltas_pdf(result, BRANDING), "-layout")
    assert re.search(r"^\s*E1\s+300\.00\s+301\.00\s+1\.00\s+0\.33\s+changed\s*$", text, re.M)
    assert "0.3333" not in text
    cell = load_workbook(io.BytesIO(deltas_xlsx(result))).active["E4"]
    assert cell.number_format == "0.00" and Decimal(repr(cell.value)) == exact


def test_history_pdf_table_and_legend_with_many_groups() -> None:
    groups = [f"Global Macro Opportunities {n:02d}" for n in range(12)]
    runs = [PeriodPayouts(period, f"r{period}", [(g, Decimal("1234567.89") + i)
                                                  for i, g in enumerate(groups)])
            for period in ("2024-01-01", "2025-01-01")]
    history = payout_history(runs, "fund")
    text = pdf_text(history_pdf(history, BRANDING), "-layout")
    assert re.search(r"^\s*Global Macro Opportunities 03\s+1,234,570\.89\s+1,234,570\.89\s*$",
                     text, re.M), "a group's totals in their own columns"
    svg = line_chart(history.periods, [(g, "#123456", history.series(g)) for g in groups])
    root = ElementTree.fromstring(svg)
    width = float(root.get("width"))
    texts = [t for t in root.iter("{http://www.w3.org/2000/svg}text") if t.text in groups]
    assert len(texts) == len(groups), "every group is in the legend"
    assert all(float(t.get("x")) + 0.62 * 8 * len(t.text) <= width for t in texts)


def test_one_period_history_draws_its_points() -> None:
    history = payout_history([PeriodPayouts("2025-01-01", "r1", [("F1", Decimal("10")),
                                                                 ("F2", Decimal("4"))])], "fund")
    svg = line_chart(history.periods, [(g, "#123456", history.series(g))
                                       for g in history.groups])
    circles = list(ElementTree.fromstring(svg).iter("{http://www.w3.org/2000/svg}circle"))
    assert len(circles) == 2
    assert {c.get("cx") for c in circles} == {f"{70 + (640 - 70 - 20) / 2:.1f}"}  # centred
    assert len({c.get("cy") for c in circles}) == 2
