"""`paysheet excel push|pull` (the desktop extra): the sync logic over the SheetBook protocol,
run here over openpyxl against the live test server; xlwings itself needs a running Excel."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from server.cli import app as cli
from server.modules.workbooks.desktop import DesktopError, PaysheetApi, pull, push
from server.modules.workbooks.layout import layout
from server.modules.workbooks.reader import read_book
from server.modules.workbooks.sheets import ERROR_COLOR, OpenpyxlBook
from server.modules.workbooks.template import build_workbook

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "samples/plans/fund_bonus.json").read_text())


def _book(document: dict) -> OpenpyxlBook:
    return OpenpyxlBook(build_workbook(document))


def _plan_cell(book: OpenpyxlBook, key: str):
    return book.workbook["Plan"][f"B{layout().plan_field(key).row}"].value


def _step_row(book: OpenpyxlBook, name: str) -> int:
    read = read_book(book)
    names = [step["name"] for step in read.document["steps"]]
    return read.rows["steps"][names.index(name)]


def _status(book: OpenpyxlBook, sheet: str, row: int) -> tuple[str | None, str | None]:
    table = layout().tables[sheet]
    cells = book.workbook[sheet]
    return (cells[f"{table.column('status').letter}{row}"].value,
            cells[f"{table.column('message').letter}{row}"].value)


def test_push_writes_statuses_then_a_fix_clears_them_and_pull_shows_the_lock(client,
                                                                            make_tenant):
    tenant = make_tenant()
    hr = tenant.users["hr"]
    steps = [dict(step) for step in SAMPLE["steps"]]
    bonus = next(step for step in steps if step["name"] == "bonus")
    bonus["expr"] = "round2(cap_floor(pool_share, level_cap, 0) + nope)"
    book = _book(SAMPLE | {"steps": steps})
    api = PaysheetApi(client)
    api.sign_in(hr.email, hr.password)

    first = push(book, api)
    plan_id = first.plan_id
    assert not first.valid and plan_id and _plan_cell(book, "plan_id") == plan_id
    assert _plan_cell(book, "status") == "draft"
    row = _step_row(book, "bonus")
    status, message = _status(book, "Steps", row)
    assert status == "error" and "nope" in message
    assert book.workbook["Steps"][f"C{row}"].fill.fgColor.rgb.endswith(ERROR_COLOR)
    assert _status(book, "Steps", _step_row(book, "cash")) == ("ok", None)
    assert _status(book, "Inputs", 2) == ("ok", None)
    stored = client.get(f"/api/v1/bonus-plans/{plan_id}/document", headers=hr.headers).json()
    assert [s["expr"] for s in stored["steps"] if s["name"] == "bonus"] == [bonus["expr"]]

    book.workbook["Steps"][f"C{row}"] = "round2(cap_floor(pool_share, level_cap, 0))"
    second = push(book, api)
    assert second.valid and second.plan_id == plan_id and second.problems == []
    assert _status(book, "Steps", row) == ("ok", None)
    assert book.workbook["Steps"][f"C{row}"].fill.fill_type is None
    listed = client.get(f"/api/v1/tenants/{tenant.id}/bonus-plans", headers=hr.headers).json()
    assert [plan["id"] for plan in listed["items"]] == [plan_id]  # the same draft, updated

    locked = client.post(f"/api/v1/bonus-plans/{plan_id}/lock", headers=hr.headers).json()
    pulled = pull(book, PaysheetApi(client, tenant.users["readonly"].token))
    assert pulled.status == "locked" and pulled.valid
    assert _plan_cell(book, "status") == "locked"
    assert _plan_cell(book, "plan_hash") == locked["plan_hash"]


def test_cell_errors_are_written_back_without_a_request(client, make_tenant):
    tenant = make_tenant()
    inputs = [dict(item) for item in SAMPLE["inputs"]]
    inputs[2]["dtype"] = "money"
    book = _book(SAMPLE | {"inputs": inputs})
    result = push(book, PaysheetApi(client, tenant.users["hr"].token))
    assert not result.valid and result.plan_id is None
    assert [p["cell"] for p in result.problems] == ["Inputs!C4"]
    status, message = _status(book, "Inputs", 4)
    assert status == "error" and "money" in message
    assert book.workbook["Inputs"]["C4"].fill.fgColor.rgb.endswith(ERROR_COLOR)
    listed = client.get(f"/api/v1/tenants/{tenant.id}/bonus-plans",
                        headers=tenant.users["hr"].headers).json()
    assert listed["items"] == []


def test_pull_needs_a_pushed_workbook(client, make_tenant):
    tenant = make_tenant()
    with pytest.raises(DesktopError, match="no plan id in its Plan sheet: push it first"):
        pull(_book(SAMPLE), PaysheetApi(client, tenant.users["hr"].token))


@pytest.mark.skipif(importlib.util.find_spec("xlwings") is not None,
                    reason="xlwings is installed: the missing-extra message cannot show")
def test_excel_commands_without_the_desktop_extra_say_how_to_install_it():
    result = CliRunner().invoke(cli, ["excel", "push", "--token", "t"])
    assert result.exit_code == 2
    assert "pip install 'paysheet[desktop]'" in result.output
