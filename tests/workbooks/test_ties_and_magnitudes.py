"""The ties and magnitudes test plan (docs/excel.md, "Exactness and its range"): half-even
ties at every magnitude up to the edge of the stated range, in products, divisions, round2,
round(x, n) and powers. Inside the range both recalculations (`formulas` and LibreOffice
Calc) give 0 differences from the engine; rows leaving it are flagged on the Cover and in the
row's range column."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from engine.backends import reference
from engine.backends.excel_audit import build_audit_workbook
from engine.backends.excel_verify import verify_workbook
from engine.plan import compile_plan
from tests.engine.plans import document, frame
from tests.workbooks.libreoffice import resave

INPUTS = {"x": "decimal", "y": "decimal"}
STEPS = {
    "r2": "round2(x)",
    "r0": "round(x, 0)",
    "r3": "round(x / 8, 3)",
    "prod": "round2(x * y)",
    "half": "round2(x / 2)",
    "sq": "if (abs(x) < 300000 || x == 20000000.005) then round2(x ^ 2) else 0",
    "cube": "if (abs(x) < 4000) then x ^ 3 else 0",
}
MAGNITUDES = [0, 1, 2, 7, 10, 1234, 99999, 1_000_000, 12_345_678, 300_000_000,
              5_000_000_000, 50_000_000_000, 99_999_999_998]
OUTSIDE = {
    "big x": {"x": Decimal("200000000000.005"), "y": Decimal(1)},  # beyond 1e11
    "square": {"x": Decimal("20000000.005"), "y": Decimal(1)},  # sq would be 4e14
    "17 digits": {"x": Decimal("1234567.1234567891"), "y": Decimal(1)},  # > 15 digits
}


def _rows() -> list[dict]:
    rows = []
    for k in MAGNITUDES:
        base = Decimal(k)
        for sign in (1, -1):
            for x, y in ((base + Decimal("0.005"), 1), (base + Decimal("0.015"), 1),
                         (base + Decimal("0.01"), Decimal("0.5")),
                         (base + Decimal("0.5"), 1), (base + Decimal("1.5"), Decimal("0.5")),
                         (base + Decimal("0.125"), Decimal("0.2"))):
                rows.append({"x": sign * x, "y": Decimal(y)})
    for values in OUTSIDE.values():
        rows.append(dict(values))
    return [{"employee_ref": f"E{i:04d}", **row} for i, row in enumerate(rows)]


@pytest.fixture(scope="module")
def ties(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ties")
    compiled = compile_plan(document(STEPS, INPUTS, payout="r2"))
    data = frame(INPUTS, _rows())
    result = reference.evaluate(compiled, data)
    cached, blank = tmp / "ties.xlsx", tmp / "ties-blank.xlsx"
    cached.write_bytes(build_audit_workbook(compiled, data, result, {}))
    blank.write_bytes(build_audit_workbook(compiled, data, result, {}, cached=False))
    engine = result.frame.sort("employee_ref").with_columns(
        data.sort("employee_ref")["x"].alias("x"))
    return compiled, engine, cached, blank


def _flagged(path: Path) -> dict[int, str]:
    calc = load_workbook(path, read_only=True)["Calc"]
    rows = list(calc.iter_rows(values_only=True))
    column = rows[0].index("range")
    return {number: row[column] for number, row in enumerate(rows[1:], start=2)
            if row[column]}


def test_rows_outside_the_range_are_flagged_on_the_cover_and_their_row(ties):
    compiled, engine, cached, _ = ties
    flagged = _flagged(cached)
    expected = set()
    for offset in range(engine.height):
        x = engine["x"][offset]
        values = [x] + [engine[name][offset] for name in compiled.display_order]
        if max(abs(v) for v in values) >= Decimal("1e11") or \
                len(x.normalize().as_tuple().digits) > 15:
            expected.add(offset + 2)
    refs = engine["employee_ref"].to_list()
    outside_rows = {refs.index(f"E{len(_rows()) - 3 + i:04d}") + 2 for i in range(3)}
    assert outside_rows < expected  # and 99,999,999,999.5 rounds to 1e11 (r0)
    assert set(flagged) == expected
    texts = " ".join(flagged.values())
    assert "x: |200000000000.005| is not below 1e+11" in texts
    assert "sq: |400000000200000| is not below 1e+11" in texts
    assert "x: 1234567.1234567891 has 17 significant digits" in texts
    assert "r0: |100000000000| is not below 1e+11" in texts
    cover = {row[0]: row[1] for row in
             load_workbook(cached, read_only=True)["Cover"].iter_rows(values_only=True)}
    assert cover["outside the stated range"].startswith(f"{len(expected)} row(s): Calc!")


def test_formulas_recalculation_has_no_difference_inside_the_range(ties):
    _, _, cached, _ = ties
    flagged = _flagged(cached)
    problems = verify_workbook(cached).problems
    inside = [p for p in problems
              if int(re.match(r"Calc!\$?[A-Z]+(\d+)", p).group(1)) not in flagged]
    assert inside == []


def test_libreoffice_has_no_difference_inside_the_range(ties, tmp_path):
    compiled, engine, cached, blank = ties
    flagged = _flagged(cached)
    saved = resave(blank, tmp_path)
    values = load_workbook(saved, data_only=True)["Calc"]
    header = {c.value: c.column_letter for c in values[1]}
    differ, compared = [], 0
    for offset in range(engine.height):
        row = offset + 2
        for name in compiled.display_order:
            want, got = engine[name][offset], values[f"{header[name]}{row}"].value
            if row in flagged:
                continue
            compared += 1
            if not isinstance(got, int | float) or abs(Decimal(repr(got)) - want) >= \
                    Decimal("0.005"):
                differ.append((row, name, str(engine["x"][offset]), got, str(want)))
    assert compared == (engine.height - len(flagged)) * len(STEPS)
    assert differ == []
    checks = {values[f"{header['check']}{row}"].value for row in range(2, engine.height + 2)
              if row not in flagged}
    assert checks == {True}
