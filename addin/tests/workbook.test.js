import assert from "node:assert/strict";
import { test } from "node:test";

import { readPlan, readTests, writeDiagnostics, writePlanMeta, writeTestResults, cellText }
  from "../src/workbook.js";
import { fakeExcel, planWorkbook } from "./support/fake-excel.js";
import { layout, sampleCells, samplePlan } from "./helpers.js";

async function read(workbook) {
  return fakeExcel(workbook).run((context) => readPlan(context, layout));
}

test("reads the sheets into the plan document the server expects", async () => {
  const { document, rows, errors } = await read(planWorkbook(layout, sampleCells()));
  assert.deepEqual(errors, []);
  assert.equal(document.name, samplePlan.name);
  assert.equal(document.payout, "bonus");
  // The Parameters sheet has no columns for the statement presentation (label, format).
  assert.deepEqual(document.parameters,
    samplePlan.parameters.map((p) => ({ key: p.key, dtype: p.dtype, value: p.value })));
  assert.deepEqual(document.inputs.map((i) => [i.key, i.dtype, i.scope, i.required, i.default]),
    samplePlan.inputs.map((i) => [i.key, i.dtype, i.scope, i.required, null]));
  const steps = samplePlan.steps.map((s) => ({ order: s.order, name: s.name, expr: s.expr,
    condition: s.condition ?? null, default: s.default ?? null, notes: s.notes ?? "" }));
  assert.deepEqual(document.steps, steps);
  assert.deepEqual(rows.steps, steps.map((_, i) => i + 2));
});

test("numbers Excel stored as numbers come back as the text typed, never floats", async () => {
  const cells = sampleCells();
  cells.parameters = [{ key: "rate", dtype: "decimal", value: 0.07 },
    { key: "tiny", dtype: "decimal", value: 1e-7 }, { key: "big", dtype: "decimal", value: 2500000 }];
  const { document } = await read(planWorkbook(layout, cells));
  assert.deepEqual(document.parameters.map((p) => p.value), ["0.07", "0.0000001", "2500000"]);
  assert.equal(cellText(true), "true");
  assert.equal(cellText("  "), null);
});

test("blank rows are skipped and each item remembers its sheet row", async () => {
  const workbook = planWorkbook(layout, sampleCells());
  const steps = workbook.sheet("Steps");
  for (const column of "ABCDEF") steps.set(`${column}3`, "");
  const { document, rows } = await read(workbook);
  assert.equal(document.steps.length, samplePlan.steps.length - 1);
  assert.deepEqual(rows.steps.slice(0, 3), [2, 4, 5]);
});

test("cells that cannot be read are errors naming sheet, row and column", async () => {
  const workbook = planWorkbook(layout, sampleCells());
  workbook.sheet("Inputs").set("C3", "decimel");
  workbook.sheet("Steps").set("A4", "ten");
  workbook.sheet("Inputs").set("E5", "maybe");
  const { errors } = await read(workbook);
  assert.deepEqual(errors.map((e) => e.cell), ["Inputs!C3", "Inputs!E5", "Steps!A4"]);
  assert.match(errors[0].message, /Type must be one of decimal/);
});

test("statuses and messages are written back and offending cells highlighted", async () => {
  const workbook = planWorkbook(layout, sampleCells());
  const excel = fakeExcel(workbook);
  const { document, rows } = await read(workbook);
  const diagnostics = [
    { step: "target_bonus", field: "expr", line: 1, column: 30, code: "unknown_name",
      message: "unknown name 'target_pc'; did you mean 'target_pct'?" },
    { step: null, field: "payout", line: null, column: null, code: "payout",
      message: "payout 'bonus2' is not a step" },
    { step: null, field: "parameters", line: null, column: null, code: "invalid_value",
      message: "parameter 'hurdle_rate': expected a decimal number" },
  ];
  const found = await excel.run((context) =>
    writeDiagnostics(context, layout, document, rows, diagnostics));
  assert.deepEqual(found.map((f) => f.cell), ["Steps!C3", "Plan!B7", "Parameters!C2"]);
  const steps = workbook.sheet("Steps");
  assert.equal(steps.get("G2"), "ok");
  assert.equal(steps.get("G3"), "error");
  assert.match(steps.get("H3"), /did you mean 'target_pct'/);
  assert.equal(steps.fills.get("C3"), "#F8CBAD");
  assert.equal(steps.get(`G${samplePlan.steps.length + 2}`), "");
  assert.equal(workbook.sheet("Parameters").get("D2"), "error");
  assert.equal(workbook.sheet("Plan").fills.get("B7"), "#F8CBAD");
  assert.match(workbook.sheet("Plan").get("B11"), /not a step/);
  for (const sheet of workbook.sheets.values()) assert.equal(sheet.protected, true);

  // after a fix, a second sync clears the old error and its highlight
  await excel.run((context) => writeDiagnostics(context, layout, document, rows, []));
  assert.equal(steps.get("G3"), "ok");
  assert.equal(steps.get("H3"), "");
  assert.equal(steps.fills.has("C3"), false);
  assert.equal(workbook.sheet("Plan").get("B11"), "");
});

test("a write into a protected sheet fails, so the pane must unprotect first", async () => {
  const workbook = planWorkbook(layout, {});
  await assert.rejects(
    fakeExcel(workbook).run(async (context) => {
      context.workbook.worksheets.getItem("Plan").getRange("B8").values = [["x"]];
      await context.sync();
    }),
    /protected/,
  );
  await fakeExcel(workbook).run((context) =>
    writePlanMeta(context, layout, { plan_id: "p-1", status: "locked", plan_hash: "abc" }));
  const plan = workbook.sheet("Plan");
  assert.deepEqual([plan.get("B8"), plan.get("B9"), plan.get("B10")], ["p-1", "locked", "abc"]);
  assert.equal(plan.protected, true);
});

test("test vectors are read from the Tests sheet and results written back", async () => {
  const workbook = planWorkbook(layout, {});
  const tests = workbook.sheet("Tests");
  tests.set("D1", "base_salary");
  tests.set("E1", "expect bonus");
  tests.set("A2", "analyst");
  tests.set("D2", 100000);
  tests.set("E2", "1500.00");
  tests.set("D4", "x");
  const excel = fakeExcel(workbook);
  const vectors = await excel.run((context) => readTests(context, layout));
  assert.deepEqual(vectors, [
    { row: 2, case: "analyst", inputs: { base_salary: "100000" }, expected: { bonus: "1500.00" },
      group: null },
    { row: 4, case: "row 4", inputs: { base_salary: "x" }, expected: {}, group: null },
  ]);
  await excel.run((context) => writeTestResults(context, layout, [
    { row: 2, passed: true, message: "ok" }, { row: 4, passed: false, message: "bad" }]));
  assert.deepEqual([tests.get("B2"), tests.get("B4"), tests.get("C4")], ["pass", "fail", "bad"]);
});
