import assert from "node:assert/strict";
import { test } from "node:test";

import { activeSheetCsv, fieldText, isDateFormat, serialToIso, toCsv } from "../src/sheetdata.js";
import { fakeExcel, FakeWorkbook } from "./support/fake-excel.js";

test("date formats, serial days and field text", () => {
  for (const format of ["yyyy-mm-dd", "m/d/yyyy", "[$-409]mmmm d, yyyy", "dd.mm.yy", "d"]) {
    assert.equal(isDateFormat(format), true, format);
  }
  for (const format of ["General", "0.00", "#,##0", "h:mm", '0.0 "days"', "@"]) {
    assert.equal(isDateFormat(format), false, format);
  }
  assert.equal(serialToIso(45658), "2025-01-01");
  assert.equal(serialToIso(45657.75), "2024-12-31");
  assert.equal(fieldText(45658, "yyyy-mm-dd"), "2025-01-01");
  assert.equal(fieldText(45658, "General"), "45658");
  assert.equal(fieldText(0.1, "General"), "0.1");
  assert.equal(fieldText(true, "General"), "true");
  assert.equal(fieldText("", "General"), "");
});

test("CSV quoting and blank rows", () => {
  assert.equal(toCsv([["a", "b"], ["", ""], ['say "hi", then', " x"], ["1", "2"]]),
    'a,b\n"say ""hi"", then"," x"\n1,2\n');
});

function dataWorkbook(rows, origin = 1) {
  const workbook = new FakeWorkbook(["Plan"]);
  const sheet = workbook.addSheet("Data");
  rows.forEach((cells, r) => cells.forEach((value, c) => {
    const address = `${String.fromCharCode(65 + c + origin - 1)}${r + origin}`;
    sheet.set(address, value);
    if (typeof value === "number" && c === 2) sheet.formats.set(address, "yyyy-mm-dd");
  }));
  return workbook;
}

test("the active sheet's used range is read in chunks into CSV", async () => {
  const rows = [["employee_ref", "base_salary", "start_date"]];
  for (let i = 1; i <= 9; i += 1) rows.push([`E${i}`, 100000 + i / 4, 45658 + i]);
  rows[3][1] = "";
  const workbook = dataWorkbook(rows, 2); // starts at B2, as a used range may
  const data = await fakeExcel(workbook).run((context) => activeSheetCsv(context, 4));
  assert.equal(data.name, "Data");
  assert.equal(data.rows, 9);
  const lines = data.csv.trimEnd().split("\n");
  assert.equal(lines[0], "employee_ref,base_salary,start_date");
  assert.equal(lines[1], "E1,100000.25,2025-01-02");
  assert.equal(lines[3], "E3,,2025-01-04");
  assert.equal(lines.length, 10);
  const reads = workbook.syncs.filter((s) => s.cells > 0);
  assert.deepEqual(reads.map((s) => s.cells), [24, 24, 12], "3 chunks of ≤4 rows, values+formats");
});

test("a sheet without data rows is refused", async () => {
  const workbook = dataWorkbook([["employee_ref", "base_salary"]]);
  await assert.rejects(fakeExcel(workbook).run((context) => activeSheetCsv(context)),
    /sheet 'Data' has no data rows/);
});
