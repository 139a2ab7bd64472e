"""The audit workbook as a finished document (issue 17): cached values for every formula, the
plan's number formats, a bold frozen header with a filter, helper columns grouped and hidden,
every sheet protected, and text from users and data written as text, never as a formula; and
`verify-workbook` reading the forms a spreadsheet application writes on re-save."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from engine.backends import reference
from engine.backends.excel_audit import build_audit_workbook
from engine.backends.excel_verify import normal_formula, normal_value, verify_workbook
from engine.plan import compile_plan
from tests.engine.plans import document, frame

HYPERLINK = '=HYPERLINK("http://evil.example/","click")'
DDE = "=cmd|' /C calc'!A0"
INPUTS = {"pool": "decimal", "w": "decimal", "team": "text", "tag": "text"}


def _workbook(tmp_path: Path, cached: bool = True) -> Path:
    doc = document(
        [
            {"order": 1, "name": "share", "expr": "allocate(pool, w, fund_ref)"},
            {"order": 2, "name": "bonus", "expr": "round2(share * 1.1)"},
            {"order": 3, "name": "rate", "expr": "round(w / 3, 4)"},
            {"order": 4, "name": "big", "expr": "share > 100"},
            {"order": 5, "name": "label", "expr": 'if (big) then tag else "small"'},
        ],
        INPUTS, payout="bonus",
    ).model_copy(update={"name": HYPERLINK})
    compiled = compile_plan(doc)
    rows = [
        {"employee_ref": "E1", "fund_ref": "F1", "pool": 1000, "w": 2, "team": "a", "tag": DDE},
        {"employee_ref": "E2", "fund_ref": "F1", "pool": 1000, "w": 1, "team": "b",
         "tag": "=1+1"},
        {"employee_ref": "E3", "fund_ref": "F2", "pool": 50, "w": 1, "team": "@SUM(A1)",
         "tag": "+x"},
    ]
    data = frame(INPUTS, rows)
    path = tmp_path / ("audit.xlsx" if cached else "blank.xlsx")
    path.write_bytes(build_audit_workbook(compiled, data, reference.evaluate(compiled, data),
                                          {"scenario": DDE}, cached=cached))
    return path


def _columns(sheet) -> dict[str, tuple[bool, int]]:
    """Column letter → (hidden, outline level), from the sheet's <col> ranges."""
    found = {}
    for dim in sheet.column_dimensions.values():
        for number in range(dim.min, dim.max + 1):
            found[get_column_letter(number)] = (bool(dim.hidden), dim.outline_level or 0)
    return found


def test_every_formula_has_a_cached_value_the_engines(tmp_path):
    path = _workbook(tmp_path)
    formulas = load_workbook(path)["Calc"]
    values = load_workbook(path, data_only=True)["Calc"]
    header = {cell.value: cell.column_letter for cell in formulas[1]}
    count = 0
    for row in formulas.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                count += 1
                assert values[cell.coordinate].value is not None, cell.coordinate
    assert count > 3 * 20  # steps, helpers, checks of 3 rows
    # the steps' cached values are the engine's, the check is TRUE on every row
    for row in (2, 3, 4):
        assert values[f"{header['bonus']}{row}"].value == \
            values[f"{header['bonus (engine)']}{row}"].value
        assert values[f"{header['check']}{row}"].value is True
    assert values[f"{header['bonus']}2"].value == 733.34  # 666.67 * 1.1 = 733.337
    assert values[f"{header['label']}2"].value == DDE


def test_formats_header_filter_helpers_and_protection(tmp_path):
    workbook = load_workbook(_workbook(tmp_path))
    assert workbook.sheetnames == ["Cover", "Calc", "Meta"]
    assert all(workbook[name].protection.sheet for name in workbook.sheetnames)
    assert workbook["Meta"].sheet_state == "hidden"
    calc = workbook["Calc"]
    header = {cell.value: cell.column_letter for cell in calc[1]}
    assert all(cell.font.b for cell in calc[1] if cell.value)
    assert calc.freeze_panes == "B2"
    assert calc.auto_filter.ref == f"A1:{header['range']}4"
    columns = _columns(calc)
    helpers = [letter for key, letter in header.items() if re.match(r"\w+\.\d+\.\w+$", key)]
    assert len(helpers) > 10
    assert all(columns[letter] == (True, 1) for letter in helpers)
    steps = ["share", "bonus", "rate", "big", "label", "bonus (engine)", "check", "pool"]
    assert all(not columns.get(header[name], (False, 0))[0] for name in steps)
    # number formats from the plan: cents for allocate/round2/payout, round(…, 4) four places
    assert calc[f"{header['bonus']}2"].number_format == "#,##0.00"
    assert calc[f"{header['share']}2"].number_format == "#,##0.00"
    assert calc[f"{header['rate']}2"].number_format == "#,##0.0000"
    assert calc[f"{header['bonus (engine)']}2"].number_format == "#,##0.00"


def test_user_and_data_text_is_never_a_formula(tmp_path):
    path = _workbook(tmp_path)
    workbook = load_workbook(path)
    cover = {row[0]: row[1] for row in workbook["Cover"].iter_rows(min_row=3) if row[0].value}
    assert {cell.value: cell.data_type for cell in cover.values()}.items() >= {
        DDE: "s"}.items()
    assert workbook["Cover"]["B3"].value == HYPERLINK
    assert workbook["Cover"]["B3"].data_type == "s"
    calc = workbook["Calc"]
    header = {cell.value: cell.column_letter for cell in calc[1]}
    texts = {calc[f"{header[name]}{row}"] for name in ("tag", "team", "label (engine)")
             for row in (2, 3, 4)}
    assert {cell.value for cell in texts} >= {DDE, "=1+1", "@SUM(A1)", "+x"}
    assert all(cell.data_type == "s" for cell in texts if cell.value is not None)
    with zipfile.ZipFile(path) as archive:
        xml = b"".join(archive.read(name) for name in archive.namelist()
                       if name.startswith("xl/worksheets/"))
    formulas = re.findall(rb"<f>(.*?)</f>", xml)
    assert formulas and not any(b"HYPERLINK" in f or b"cmd|" in f or f == b"1+1"
                                for f in formulas)


def test_a_workbook_without_cached_values_has_none(tmp_path):
    values = load_workbook(_workbook(tmp_path, cached=False), data_only=True)["Calc"]
    header = {cell.value: cell.column_letter for cell in values[1]}
    assert values[f"{header['bonus']}2"].value is None  # blanked: only a recalculation fills it
    assert values[f"{header['bonus (engine)']}2"].value == 733.34


def test_re_saved_spellings_are_normalised_and_nothing_else():
    assert normal_formula("=IF(A2=TRUE(),FALSE(),B2)") == "=IF(A2=TRUE,FALSE,B2)"
    assert normal_formula('=IF(A2, "FALSE()", _xlfn.X( 1 ))') == '=IF(A2,"FALSE()",X(1))'
    assert normal_formula("=IF(A2,FALSE,B3)") != normal_formula("=IF(A2,FALSE,B2)")
    assert normal_value("=TRUE()") is True and normal_value("=FALSE") is False
    assert normal_value("=NA()") == "=NA()" and normal_value("=1+1") == "=1+1"


def _shared(xml: bytes, letter: str, master: str | None) -> bytes:
    """`letter`'s formulas in `xml` as one shared formula (master first, then references)."""
    cells = re.compile(rf'(<c r="{letter}(\d+)"[^>]*>)<f>(.*?)</f>'.encode())
    found = cells.findall(xml)
    first, last = found[0][1].decode(), found[-1][1].decode()
    head = f'<f t="shared" ref="{letter}{first}:{letter}{last}" si="0">'.encode()

    def share(match: re.Match[bytes]) -> bytes:
        if match.group(2).decode() == first:
            text = master.encode() if master else match.group(3)
            return match.group(1) + head + text + b"</f>"
        return match.group(1) + b'<f t="shared" si="0"/>'

    return cells.sub(share, xml)


def _share_column(path: Path, out: Path, letter: str, master: str | None = None) -> None:
    """Rewrite `letter`'s formulas as Excel's shared formulas (one master, the others
    referring to it), the form Excel writes on save; `master` replaces the master's text."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for entry in source.infolist():
            data = source.read(entry.filename)
            if entry.filename == "xl/worksheets/sheet2.xml":
                data = _shared(data, letter, master)
            target.writestr(entry, data)


def test_shared_formulas_verify_and_a_changed_master_is_caught(tmp_path):
    path = _workbook(tmp_path)
    header = {c.value: c.column_letter for c in load_workbook(path, read_only=True)["Calc"][1]}
    letter = header["rate"]
    shared = tmp_path / "shared.xlsx"
    _share_column(path, shared, letter)
    assert b't="shared"' in zipfile.ZipFile(shared).read("xl/worksheets/sheet2.xml")
    assert verify_workbook(shared).problems == []
    tampered = tmp_path / "shared-tampered.xlsx"
    _share_column(path, tampered, letter, master=f"ROUND({header['w']}2/4,4)")
    problems = verify_workbook(tampered).problems
    assert f"Calc!{letter}2: formula of 'rate' was changed" in problems
    assert f"Calc!{letter}4: formula of 'rate' was changed" in problems
