import assert from "node:assert/strict";
import { test } from "node:test";

import { poolSummary, resultsTable, safeText, tapeLines } from "../src/results.js";

test("user and data text that Excel would read as a formula stays text", () => {
  assert.equal(safeText("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
  assert.equal(safeText("+1"), "'+1");
  assert.equal(safeText("@SUM(A1)"), "'@SUM(A1)");
  assert.equal(safeText("E01"), "E01");
});

test("results rows carry payout, the change against the previous finalized run, diagnostics", () => {
  const results = [
    { employee_ref: "E01", values: { bonus: "100.1000000000", eligible: true, level: "vp" },
      diagnostics: [] },
    { employee_ref: "E02", values: { bonus: null, eligible: false, level: "=1+1" },
      diagnostics: [{ step: "bonus", code: "division_by_zero" }] },
    { employee_ref: "E03", values: { bonus: "5.0000000000", eligible: true, level: "vp" },
      diagnostics: [] },
  ];
  const previous = new Map([["E01", "90.0500000000"], ["E02", "10.0000000000"]]);
  const table = resultsTable(results, "bonus", ["eligible", "level", "bonus"], previous);
  assert.deepEqual(table.header, ["Employee", "Payout (bonus)", "Previous finalized payout",
    "Change", "Diagnostics", "eligible", "level", "bonus"]);
  assert.deepEqual(table.rows, [
    ["E01", 100.1, 90.05, 10.05, "", true, "vp", 100.1],
    ["E02", "", 10, "", "bonus: division_by_zero", false, "'=1+1", ""],
    ["E03", 5, "new", "", "", true, "vp", 5],
  ]);
  const alone = resultsTable(results.slice(0, 1), "bonus", [], null);
  assert.deepEqual(alone.rows, [["E01", 100.1, "", "", ""]]);
});

test("the pool summary lists every group of every allocate step", () => {
  const totals = { pools: [{ step: "pool_share", groups: [
    { key: "F1", headcount: 3, pool_amount: "1000.0000000000", allocated: "999.9900000000",
      unallocated: "0.0100000000", paid: "999.9900000000" },
    { key: "__all__", headcount: 1, pool_amount: "5.0000000000", allocated: "5.0000000000",
      unallocated: "0.0000000000", paid: "5.0000000000" }] }] };
  assert.deepEqual(poolSummary(totals).rows, [
    ["pool_share", "F1", 3, 1000, 999.99, 0.01, 999.99],
    ["pool_share", "(all)", 1, 5, 5, 0, 5]]);
  assert.deepEqual(poolSummary({}).rows, []);
});

test("a tape reads as one line per step", () => {
  const tape = { steps: [
    { step: "target", expr: "salary * 0.1", condition: null, result: "100.0000000000",
      diagnostics: [] },
    { step: "ratio", expr: "a / b", condition: "b > 0", condition_value: true, result: null,
      diagnostics: [{ code: "division_by_zero" }] }] };
  assert.deepEqual(tapeLines(tape), ["target = salary * 0.1 → 100",
    "ratio = a / b [if b > 0: true] → null (division_by_zero)"]);
});
