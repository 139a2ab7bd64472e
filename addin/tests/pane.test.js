import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError } from "../src/api.js";
import { Pane } from "../src/pane.js";
import { fakeExcel, planWorkbook } from "./support/fake-excel.js";
import { layout, sampleCells } from "./helpers.js";

/** A recording stand-in for PaysheetApi (the live server is exercised by the browser test). */
function stubApi(answers) {
  const calls = [];
  const api = {};
  for (const name of ["createPlan", "putDocument", "evaluate", "lock", "results",
    "finalizedRuns"]) {
    api[name] = async (...args) => {
      calls.push([name, ...args]);
      const answer = answers[name];
      if (answer instanceof Error) throw answer;
      return typeof answer === "function" ? answer(...args) : answer;
    };
  }
  return { api, calls };
}

function pane(workbook, answers) {
  const { api, calls } = stubApi(answers);
  const instance = new Pane({ api, excel: fakeExcel(workbook) });
  instance.layout = layout;
  return { pane: instance, calls };
}

const PLAN = { id: "plan-1", status: "draft", version: 1 };

test("first sync creates the draft, stores the document and writes the plan id", async () => {
  const workbook = planWorkbook(layout, sampleCells());
  const { pane: p, calls } = pane(workbook, {
    createPlan: PLAN,
    putDocument: { valid: true, diagnostics: [], plan_hash: "h".repeat(64), plan: PLAN },
  });
  const result = await p.sync();
  assert.deepEqual(calls.map((c) => c[0]), ["createPlan", "putDocument"]);
  assert.equal(calls[1][1], "plan-1");
  assert.equal(calls[1][2].steps.length, 17);
  assert.equal(result.valid, true);
  assert.equal(workbook.sheet("Plan").get("B8"), "plan-1");

  const again = pane(workbook, { putDocument: { valid: true, diagnostics: [], plan_hash: "h",
    plan: PLAN } });
  await again.pane.sync();
  assert.deepEqual(again.calls.map((c) => c[0]), ["putDocument"], "the plan id is reused");
});

test("a 422 from the server is written into the cells it names", async () => {
  const workbook = planWorkbook(layout, { ...sampleCells(), plan_id: "plan-1" });
  const refusal = new ApiError(422, { detail: "bad", errors: [
    { loc: ["body", "inputs", 2, "dtype"], msg: "Input should be 'decimal'", type: "literal" },
    { loc: ["body", "effective_from"], msg: "Input should be a valid date", type: "date" },
  ] });
  const { pane: p } = pane(workbook, { putDocument: refusal });
  const result = await p.sync();
  assert.equal(result.valid, false);
  assert.deepEqual(result.problems.map((x) => x.cell), ["Inputs!C4", "Plan!B4"]);
  assert.equal(workbook.sheet("Inputs").get("G4"), "error");
  assert.equal(workbook.sheet("Inputs").fills.get("C4"), "#F8CBAD");
});

test("unreadable cells are reported without calling the server", async () => {
  const workbook = planWorkbook(layout, { ...sampleCells(), plan_id: "plan-1" });
  workbook.sheet("Steps").set("A2", "first");
  const { pane: p, calls } = pane(workbook, {});
  const result = await p.sync();
  assert.deepEqual(calls, []);
  assert.deepEqual(result.problems.map((x) => x.cell), ["Steps!A2"]);
  assert.equal(workbook.sheet("Steps").get("G2"), "error");
});

test("each test row is evaluated on its own unless rows share a Group", async () => {
  const workbook = planWorkbook(layout, { ...sampleCells(), plan_id: "plan-1" });
  const tests = workbook.sheet("Tests");
  for (const [cell, value] of Object.entries({ D1: "base_salary", E1: "Group",
    F1: "expect bonus", D2: "1000", F2: "15", D3: "2000", F3: "31", D4: "3000", E4: "g",
    D5: "4000", E5: "g" })) tests.set(cell, value);
  const { pane: p, calls } = pane(workbook, {
    // a population-sensitive stand-in: bonus is 15 per row of the request
    evaluate: (_, rows) => ({ rows: rows.map((r) => ({ employee_ref: r.employee_ref,
      values: { bonus: `${15 * rows.length}.0000000000` }, diagnostics: [] })) }),
  });
  const results = await p.runTests("plan-1");
  assert.deepEqual(calls.map((c) => c[2].map((r) => r.employee_ref)),
    [["T2"], ["T3"], ["T4", "T5"]]);
  assert.deepEqual(results.slice(0, 2), [
    { row: 2, passed: true, message: "all expected values match" },
    { row: 3, passed: false, message: "bonus: expected 31.00, got 15.00 (difference -16.00)" },
  ]);
  assert.equal(tests.get("B3"), "fail");
  assert.equal(tests.get("C3"), "bonus: expected 31.00, got 15.00 (difference -16.00)");
});

test("tests run on the synced plan and lock writes the hash", async () => {
  const workbook = planWorkbook(layout, { ...sampleCells(), plan_id: "plan-1" });
  const tests = workbook.sheet("Tests");
  tests.set("D1", "base_salary");
  tests.set("E1", "expect bonus");
  tests.set("D2", "1000");
  tests.set("E2", "15");
  const { pane: p, calls } = pane(workbook, {
    evaluate: (_, rows) => ({ rows: rows.map((r) => ({ employee_ref: r.employee_ref,
      values: { bonus: "15.0000000000" }, diagnostics: [] })) }),
    lock: { ...PLAN, status: "locked", plan_hash: "a".repeat(64) },
  });
  const results = await p.runTests("plan-1");
  assert.deepEqual(results, [{ row: 2, passed: true, message: "all expected values match" }]);
  assert.deepEqual(calls[0], ["evaluate", "plan-1", [{ employee_ref: "T2", base_salary: "1000" }]]);
  assert.equal(tests.get("B2"), "pass");
  await p.lock("plan-1");
  assert.equal(workbook.sheet("Plan").get("B9"), "locked");
  assert.equal(workbook.sheet("Plan").get("B10"), "a".repeat(64));
});

test("selecting a problem activates its sheet and selects its cell", async () => {
  const workbook = planWorkbook(layout, sampleCells());
  const { pane: p } = pane(workbook, {});
  await p.selectCell("Steps!C3");
  assert.equal(workbook.active, "Steps");
  assert.equal(workbook.selected, "Steps!C3");
  await assert.rejects(p.selectCell("nonsense"), /Not a cell reference/);
  await assert.rejects(p.selectCell("Nope!A1"), /no sheet 'Nope'/);
});

test("a run's results go to a Results sheet, paged and compared with the last finalized run",
  async () => {
    const workbook = planWorkbook(layout, { ...sampleCells(), plan_id: "plan-1" });
    const pages = {
      "run-2": [{ items: [{ employee_ref: "E01", values: { bonus: "20.0000000000" },
        diagnostics: [] }], next_cursor: "c1" },
      { items: [{ employee_ref: "=E02", values: { bonus: "5.5000000000" }, diagnostics: [] }],
        next_cursor: null }],
      "run-1": [{ items: [{ employee_ref: "E01", values: { bonus: "15.2500000000" },
        diagnostics: [] }], next_cursor: null }],
    };
    const { pane: p, calls } = pane(workbook, {
      results: (runId, cursor) => pages[runId][cursor ? 1 : 0],
      finalizedRuns: { items: [{ id: "run-1" }] },
    });
    const run = { id: "run-2", plan_id: "plan-1", totals: { payout_step: "bonus", pools: [
      { step: "pool_share", groups: [{ key: "F1", headcount: 2, pool_amount: "30.0000000000",
        allocated: "25.5000000000", unallocated: "4.5000000000", paid: "25.5000000000" }] }] } };
    const written = await p.writeResults(run);
    assert.deepEqual(written, { rows: 2, pools: 1, compared: true });
    assert.deepEqual(calls.filter((c) => c[0] === "results").map((c) => [c[1], c[2]]),
      [["run-2", null], ["run-2", "c1"], ["run-1", null]]);
    const sheet = workbook.sheet("Results");
    assert.equal(workbook.active, "Results");
    assert.equal(sheet.get("A1"), "Employee");
    assert.deepEqual(["A2", "B2", "C2", "D2"].map((c) => sheet.get(c)), ["E01", 20, 15.25, 4.75]);
    assert.deepEqual(["A3", "B3", "C3"].map((c) => sheet.get(c)), ["'=E02", 5.5, "new"]);
    assert.equal(sheet.get("A5"), "Pool step");
    assert.deepEqual(["A6", "B6", "C6", "D6", "G6"].map((c) => sheet.get(c)),
      ["pool_share", "F1", 2, 30, 25.5]);
    // selecting an employee row (any cell of it) asks for that employee's tape; the header,
    // the blank row and the pool summary below do not
    const asked = [];
    assert.equal(await p.followResultsSelection((ref) => asked.push(ref)), true);
    for (const address of ["C2", "A1", "B3:D3", "A4", "A5", "B6"]) {
      await workbook.userSelects("Results", address);
    }
    assert.deepEqual(asked, ["E01", "'=E02"]);
    assert.equal(workbook.selected, "Results!B6");
    // written again: the old rows are cleared first
    pages["run-2"] = [{ items: [], next_cursor: null }];
    await p.writeResults({ ...run, totals: { payout_step: "bonus" } });
    assert.equal(sheet.get("A2"), "");
    assert.equal(sheet.get("A1"), "Employee");
  });

test("10k result rows are written in chunks under Excel's request limit", async () => {
  const workbook = planWorkbook(layout, { ...sampleCells(), plan_id: "plan-1" });
  const items = Array.from({ length: 10_000 }, (_, i) => ({
    employee_ref: `E${String(i).padStart(5, "0")}`, values: { bonus: `${i}.5000000000` },
    diagnostics: [] }));
  const { pane: p } = pane(workbook, {
    results: () => ({ items, next_cursor: null }), finalizedRuns: { items: [] } });
  const before = workbook.syncs.length;
  const written = await p.writeResults({ id: "r", plan_id: "plan-1",
    totals: { payout_step: "bonus" } });
  assert.deepEqual(written, { rows: 10_000, pools: 0, compared: false });
  assert.equal(workbook.sheet("Results").get("B10001"), 9999.5);
  const writes = workbook.syncs.slice(before).filter((s) => s.cells > 0);
  assert.ok(writes.length > 1, "more than one write request");
  assert.ok(writes.every((s) => s.cells * 64 <= 4 * 1024 * 1024), "each under the limit");
});
