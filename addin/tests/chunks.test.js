import assert from "node:assert/strict";
import { test } from "node:test";

import { OfficeMockObject } from "office-addin-mock";

import { columnIndex, columnLetter, LIMIT_BYTES, readRows, rowsPerChunk, writeRows }
  from "../src/chunks.js";
import { FakeWorkbook, fakeExcel } from "./support/fake-excel.js";

test("column letters", () => {
  assert.deepEqual([1, 26, 27, 52, 703].map(columnLetter), ["A", "Z", "AA", "AZ", "AAA"]);
  assert.deepEqual(["A", "Z", "AA", "AAA"].map(columnIndex), [1, 26, 27, 703]);
});

test("a chunk never exceeds the request limit", () => {
  for (const columns of [1, 8, 40, 300]) {
    const rows = rowsPerChunk(columns);
    assert.ok(rows * columns * 64 <= LIMIT_BYTES, `${columns} columns`);
    assert.ok((rows + 1) * columns * 64 > LIMIT_BYTES, "and is as large as allowed");
  }
  assert.equal(rowsPerChunk(10_000_000), 1);
});

test("large ranges are read and written in chunks, one request per chunk", async () => {
  const workbook = new FakeWorkbook(["Data"]);
  workbook.sheet("Data").protected = false;
  const values = Array.from({ length: 2500 }, (_, r) => [`E${r}`, r, r % 2 === 0]);
  const excel = fakeExcel(workbook);
  await excel.run((context) => {
    const sheet = context.workbook.worksheets.getItem("Data");
    return writeRows(context, sheet, 2, "A", values, 1000);
  });
  assert.deepEqual(workbook.syncs.map((s) => s.cells), [3000, 3000, 1500]);
  const read = await excel.run((context) => {
    const sheet = context.workbook.worksheets.getItem("Data");
    return readRows(context, sheet, 2, 2501, 3, 700);
  });
  assert.equal(read.length, 2500);
  assert.deepEqual(read[2499], ["E2499", 2499, false]);
  assert.deepEqual(workbook.syncs.slice(3).map((s) => s.cells), [2100, 2100, 2100, 1200]);
});

test("readRows loads before it reads (office-addin-mock enforces load and sync)", async () => {
  const requested = [];
  const mock = new OfficeMockObject({
    context: {
      workbook: {
        range: { values: [["a", 1], ["b", 2]] },
        sheet: {
          getRange(address) {
            requested.push(address);
            return mock.context.workbook.range;
          },
        },
      },
    },
  });
  const { context } = mock;
  const rows = await readRows(context, context.workbook.sheet, 2, 5, 2, 2);
  assert.deepEqual(requested, ["A2:B3", "A4:B5"]);
  assert.deepEqual(rows, [["a", 1], ["b", 2], ["a", 1], ["b", 2]]);

  const unloaded = new OfficeMockObject({ range: { values: [["x"]] } });
  assert.notDeepEqual(unloaded.range.values, [["x"]], "the mock hides values until loaded");
});
