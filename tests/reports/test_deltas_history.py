"""Scenario deltas and payout history: exact totals, numeric XLSX cells, readable PDFs."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook

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
