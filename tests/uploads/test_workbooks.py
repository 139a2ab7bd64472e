"""Workbooks through calamine: formats, sheets, headers, limits and refusals that say what to
do in Excel."""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass
from datetime import date, datetime

import pytest

from server.modules.uploads import workbooks
from server.modules.uploads.parsing import FileRejected, iter_records, sniff
from tests.uploads.workbook_files import (
    dimensionless_sheet,
    encrypted,
    ods,
    replace_part,
    write,
    xls,
    xlsx,
)

ROWS = [["Employee ID", "Salary", "Start"], ["E1", 85000.5, date(2025, 3, 31)],
        ["E2", 1e-7, datetime(2025, 4, 1)]]
EXPECTED = [(2, ["E1", "85000.5", "2025-03-31"]), (3, ["E2", "0.0000001", "2025-04-01"])]


@dataclass(frozen=True)
class Input:
    key: str
    label: str


TARGETS = [Input("employee_ref", "Employee ID"), Input("base_salary", "Base salary"),
           Input("start_date", "Start date")]


def _records(path, fmt):
    return [(r.row, r.cells) for r in iter_records(path, fmt)]


@pytest.mark.parametrize(("name", "make"), [
    ("staff.xlsx", lambda: xlsx({"Staff": ROWS})),
    ("staff.xls", lambda: xls(ROWS)),
    ("staff.ods", lambda: ods(ROWS)),
])
def test_each_format_reads_the_same_values(tmp_path, name, make) -> None:
    path = write(tmp_path, name, make())
    fmt = sniff(path)
    assert (fmt.format, fmt.sheet, fmt.columns) == (name.rsplit(".", 1)[1], "Staff",
                                                    ROWS[0])
    assert _records(path, fmt) == EXPECTED


def test_the_sheet_matching_the_inputs_is_chosen_and_the_reason_given(tmp_path) -> None:
    data = xlsx({"Cover": [["Bonus data 2025"], ["Prepared by HR"]],
                 "Pivot": [["Team", "Total"], ["T1", 5]],
                 "Data": [["Year-end data"], [], ["Emp ID", "Name", "Name", "Salary", "DOJ"],
                          ["E1", "A", "B", 100, date(2020, 1, 31)]]})
    path = write(tmp_path, "book.xlsx", data)
    fmt = sniff(path, targets=TARGETS)
    assert fmt.sheet == "Data" and fmt.header_row == 3
    assert fmt.columns == ["Emp ID", "Name", "Name (2)", "Salary", "DOJ"]
    assert "matches 3 of 3 inputs" in fmt.sheet_reason and "'Pivot' matches 0" in \
        fmt.sheet_reason
    assert [s["name"] for s in fmt.sheets] == ["Cover", "Pivot", "Data"]
    assert "rows 1-2 above the header row (row 3) were skipped" in fmt.notes
    assert _records(path, fmt) == [(4, ["E1", "A", "B", "100", "2020-01-31"])]
    chosen = sniff(path, "Pivot", targets=TARGETS)
    assert (chosen.sheet, chosen.columns, chosen.sheet_reason) == (
        "Pivot", ["Team", "Total"], "sheet 'Pivot' as chosen")
    with pytest.raises(FileRejected, match=r"no sheet 'Nope' .*Cover, Pivot, Data"):
        sniff(path, "Nope")


def test_a_formula_without_saved_value_says_how_to_fix_it(tmp_path) -> None:
    path = write(tmp_path, "calc.xlsx", xlsx({"S": [["ID", "Pay"], ["E1", "=2*3"],
                                                    ["E2", "=B2+1"]]}))
    with pytest.raises(FileRejected) as caught:
        sniff(path)
    assert caught.value.code == "formula"
    assert "2 formula cell(s) without a saved value (e.g. B2, B3)" in str(caught.value)
    assert "Calculate Now" in str(caught.value) and "Paste Special" in str(caught.value)


def test_a_password_protected_workbook_says_how_to_remove_the_password(tmp_path) -> None:
    path = write(tmp_path, "locked.xlsx", encrypted(xlsx({"S": ROWS})))
    with pytest.raises(FileRejected) as caught:
        sniff(path)
    assert caught.value.code == "password" and "Encrypt with Password" in str(caught.value)


def test_a_time_of_day_in_a_date_cell_is_kept_for_the_reader_to_refuse(tmp_path) -> None:
    path = write(tmp_path, "t.xlsx", xlsx({"S": [["ID", "Start"],
                                                 ["E1", datetime(2025, 3, 31, 14, 30)]]}))
    assert _records(path, sniff(path)) == [(2, ["E1", "2025-03-31 14:30:00"])]


def test_a_dimensionless_sheet_over_the_xml_limit_is_refused_fast(tmp_path, monkeypatch
                                                                  ) -> None:
    monkeypatch.setattr(workbooks, "MAX_SHEET_XML_BYTES", 4 * 1024 * 1024)
    data = replace_part(xlsx({"S": [["x"]]}), "xl/worksheets/sheet1.xml",
                        dimensionless_sheet(60_000))
    path = write(tmp_path, "formatted.xlsx", data)
    assert path.stat().st_size < 4 * 1024 * 1024  # under the limit packed, far over unpacked
    tracemalloc.start()
    started = time.process_time()
    with pytest.raises(FileRejected) as caught:
        sniff(path)
    cpu = time.process_time() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert caught.value.code == "too_large" and "limit 4 MB" in str(caught.value)
    assert "delete them" in str(caught.value)
    print(f"refused after {cpu:.2f} s CPU, Python peak {peak / 2**20:.1f} MB")
    assert peak < 64 * 1024 * 1024


def test_a_dimensionless_sheet_under_the_limit_is_read(tmp_path) -> None:
    data = replace_part(xlsx({"S": [["x"]]}), "xl/worksheets/sheet1.xml",
                        dimensionless_sheet(2_000))
    path = write(tmp_path, "formatted.xlsx", data)
    with pytest.raises(FileRejected, match=r"header row \(row 1\) but no data rows"):
        sniff(path)


def test_too_many_columns_and_cells_are_refused_naming_the_limit(tmp_path, monkeypatch
                                                                ) -> None:
    wide = write(tmp_path, "wide.xlsx", xlsx({"S": [["ID"] + [None] * 1200 + ["far"],
                                                    ["E1"]]}))
    with pytest.raises(FileRejected) as caught:
        sniff(wide)
    assert caught.value.code == "too_many_columns" and "limit 1,000 columns" in str(
        caught.value)
    monkeypatch.setattr(workbooks, "MAX_CELLS", 50)
    many = write(tmp_path, "many.xlsx", xlsx({"S": [["ID", "Pay"]] + [["E", 1]] * 40}))
    with pytest.raises(FileRejected) as caught:
        sniff(many)
    assert caught.value.code == "too_many_cells" and "limit 50" in str(caught.value)


def test_entity_declarations_are_refused(tmp_path) -> None:
    laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
              b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
              b'count="1" uniqueCount="1"><si><t>&lol2;</t></si></sst>')
    data = replace_part(xlsx({"S": [["ID"], ["E1"]]}), "xl/styles.xml", [laughs])
    with pytest.raises(FileRejected) as caught:
        sniff(write(tmp_path, "laughs.xlsx", data))
    assert caught.value.code == "xml" and "entities" in str(caught.value)


def test_a_zip_that_is_no_workbook_and_a_damaged_xls_are_refused(tmp_path) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(FileRejected, match="ZIP archive, not a CSV file or a workbook"):
        sniff(write(tmp_path, "a.zip", buffer.getvalue()))
    broken = workbooks.OLE_MAGIC + b"\x00" * 600
    with pytest.raises(FileRejected, match="damaged"):
        sniff(write(tmp_path, "b.xls", broken))


def test_workbook_numbers_are_never_ambiguous(tmp_path) -> None:
    path = write(tmp_path, "n.xlsx", xlsx({"S": [["ID", "Pay"], ["E1", 1.234], ["E2", 2.125]]}))
    fmt = sniff(path)
    assert fmt.profile["decimal"] == "." and "numbers as numbers" in \
        fmt.profile["decided"]["decimal"]
    assert _records(path, fmt) == [(2, ["E1", "1.234"]), (3, ["E2", "2.125"])]
