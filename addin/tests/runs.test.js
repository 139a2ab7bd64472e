import assert from "node:assert/strict";
import { test } from "node:test";

import {
  approvalButtons, confirmMapping, controlsFor, decisionRequest, downloadsFor, formatAmount, mappingRows,
  confirmation, historyLine, progressOf, splitCell, stateLabel, statementRequest, statementsJob,
  totalsLines, whenLabel, workbookDownload,
} from "../src/runs.js";

const SUGGESTIONS = {
  columns: ["Emp ID", "Salary", "Score", "Fund"],
  suggestions: [
    { key: "base_salary", label: "Base salary", required: true, column: "Salary",
      confidence: 0.95, source: "name", alternatives: [] },
    { key: "employee_ref", label: "Employee", required: true, column: "Emp ID",
      confidence: 0.9, source: "name", alternatives: [] },
    { key: "performance_score", label: "Score", required: true, column: null, confidence: 0,
      source: null, alternatives: [] },
    { key: "start_date", label: "Start date", required: false, column: null, confidence: 0,
      source: null, alternatives: [] },
  ],
};

test("suggestions become rows, employee_ref first, with every column as an option", () => {
  const rows = mappingRows(SUGGESTIONS);
  assert.deepEqual(rows.map((r) => r.key),
    ["employee_ref", "base_salary", "performance_score", "start_date"]);
  assert.deepEqual(rows[0].options, SUGGESTIONS.columns);
  assert.equal(rows[1].column, "Salary");
  assert.equal(rows[2].column, null);
});

test("confirming keeps the suggestions unless changed, and names every problem", () => {
  const rows = mappingRows(SUGGESTIONS);
  const missing = confirmMapping(rows);
  assert.deepEqual(missing.problems, [{ key: "performance_score", message: "'Score' needs a column" }]);

  const ok = confirmMapping(rows, { performance_score: "Score" });
  assert.deepEqual(ok.problems, []);
  assert.deepEqual(ok.mapping, { employee_ref: "Emp ID", base_salary: "Salary",
    performance_score: "Score" });

  const twice = confirmMapping(rows, { performance_score: "Salary", start_date: "Nope" });
  assert.deepEqual(twice.problems.map((p) => p.message), [
    "column 'Salary' is already mapped to 'base_salary'",
    "column 'Nope' is not in the file",
  ]);
  const cleared = confirmMapping(rows, { performance_score: "Score", base_salary: "" });
  assert.deepEqual(cleared.problems.map((p) => p.key), ["base_salary"]);
});

test("progress: phases to a percentage, the end and failures", () => {
  assert.deepEqual(progressOf({ status: "queued", progress: { phase: "queued" } }),
    { label: "Queued", percent: 0, finished: false, failed: false });
  const event = { run_id: "r", status: "running", phase: "compute", rows_done: 0,
    rows_total: 24 };
  assert.deepEqual(progressOf(event),
    { label: "Running: compute · 24 employees", percent: 50, finished: false, failed: false });
  assert.equal(progressOf({ status: "running", progress: { phase: "persist" } }).percent, 75);
  assert.deepEqual(progressOf({ status: "draft", progress: { phase: "done" } }),
    { label: "Computed", percent: 100, finished: true, failed: false });
  assert.equal(progressOf({ status: "finance_approved", progress: { phase: "done" } }).label,
    "Computed");
  const failed = progressOf({ status: "failed", error: "step 'x': overflow" });
  assert.equal(failed.failed, true);
  assert.equal(failed.label, "Failed: step 'x': overflow");
});

test("totals lines and amounts are formatted from text, never floats", () => {
  assert.equal(formatAmount("1234567.5000000000"), "1,234,567.50");
  assert.equal(formatAmount("-0.1250000000"), "-0.125");
  assert.equal(formatAmount("12345678901234567890.0100000000"), "12,345,678,901,234,567,890.01");
  assert.equal(formatAmount(null), "—");
  assert.deepEqual(totalsLines({ headcount: 24, payout_step: "bonus",
    total_payout: "600000.0000000000", currency: "USD", null_payouts: 0 }), [
    ["Employees", "24"], ["Total bonus", "600,000.00 USD"], ["Null payouts", "0"]]);
  assert.deepEqual(totalsLines(null), []);
});

const PERMISSIONS = {
  manager: ["runs.read", "runs.approve.manager", "reports.read"],
  hr: ["runs.read", "runs.create", "runs.approve.hr", "reports.read", "runs.workbook"],
  finance: ["runs.read", "runs.create", "runs.approve.finance", "runs.finalize",
    "reports.read", "runs.workbook"],
  admin: ["runs.read", "runs.create", "runs.finalize", "reports.read", "runs.workbook"],
  auditor: ["runs.read", "reports.read", "runs.workbook"],
  readonly: ["runs.read"],
};
const user = (role, id = `${role}-1`) => ({ id, role, permissions: PERMISSIONS[role] });
const run = (status, extra = {}) => ({ id: "run-1", status, created_by: "hr-9",
  approvals: { state: status, history: [] }, ...extra });
const actions = (who, subject) => approvalButtons(who, subject).buttons.map((b) => b.action);

test("each role sees the buttons of its gate, in the run's state", () => {
  assert.deepEqual(actions(user("manager"), run("draft")), ["manager_approve", "reject"]);
  assert.deepEqual(actions(user("hr"), run("draft")), []);
  assert.match(approvalButtons(user("hr"), run("draft")).note, /Waiting for a manager/);
  assert.deepEqual(actions(user("hr"), run("manager_approved")), ["hr_approve", "reject"]);
  assert.deepEqual(actions(user("finance"), run("hr_approved")), ["finance_approve", "reject"]);
  assert.deepEqual(actions(user("finance"), run("finance_approved")), ["finalize", "reject"]);
  assert.deepEqual(actions(user("admin"), run("finance_approved")), ["finalize", "reject"]);
  for (const role of ["auditor", "readonly"]) {
    for (const state of ["draft", "manager_approved", "hr_approved", "finance_approved"]) {
      assert.deepEqual(actions(user(role), run(state)), [], `${role} ${state}`);
    }
  }
  assert.deepEqual(actions(user("finance"), run("finalized")), []);
  assert.deepEqual(actions(user("manager"), run("running")), []);
  assert.deepEqual(actions(user("manager"), run("failed")), []);
  const reject = approvalButtons(user("manager"), run("draft")).buttons[1];
  assert.equal(reject.needsComment, true);
});

test("four-eyes: the starter and a second-stage approver get no approve button", () => {
  const mine = approvalButtons(user("finance"), run("hr_approved", { created_by: "finance-1" }));
  assert.deepEqual(mine.buttons.map((b) => b.action), ["reject"]);
  assert.match(mine.note, /you started this run/);

  const history = [{ action: "hr_approve", actor_user_id: "finance-1" }];
  const twice = approvalButtons(user("finance"), run("hr_approved", { approvals: { history } }));
  assert.deepEqual(twice.buttons.map((b) => b.action), ["reject"]);
  assert.match(twice.note, /already approved a stage/);
  const afterReject = run("hr_approved", { approvals: { history: [...history,
    { action: "reject", actor_user_id: "x" }] } });
  assert.deepEqual(actions(user("finance"), afterReject), ["finance_approve", "reject"],
    "a reject starts a new round");
  // separation of duties (the server's default): whoever approved does not finalize, even
  // after a reject (the server looks at the whole history)
  const finalize = run("finance_approved", { approvals: { history: [
    { action: "finance_approve", actor_user_id: "finance-1" }] } });
  const approver = approvalButtons(user("finance"), finalize);
  assert.deepEqual(approver.buttons.map((b) => b.action), ["reject"]);
  assert.match(approver.note, /Separation of duties: you approved this run/);
  const earlierRound = run("finance_approved", { approvals: { history: [
    { action: "hr_approve", actor_user_id: "admin-1" }, { action: "reject", actor_user_id: "x" },
    { action: "finance_approve", actor_user_id: "finance-2" }] } });
  assert.deepEqual(actions(user("admin"), earlierRound), ["reject"]);
  assert.deepEqual(actions(user("finance", "finance-2"), finalize), ["finalize", "reject"],
    "another finance user may finalize");
  // a tenant without separation of duties: only the starter rule holds
  const relaxed = { ...user("finance"), separation_of_duties: false };
  assert.deepEqual(actions(relaxed, finalize), ["finalize", "reject"]);
  assert.deepEqual(actions(relaxed, run("hr_approved", { approvals: { history } })),
    ["finance_approve", "reject"]);
  assert.deepEqual(actions({ ...relaxed, id: "hr-9" }, finalize), ["reject"]);
  assert.equal(approvalButtons(user("manager"), run("draft")).note, "");
});

test("the pane's own controls follow the signed-in user's permissions", () => {
  const withPlans = (role, extra) => ({ ...user(role), permissions: [...PERMISSIONS[role], ...extra] });
  assert.deepEqual(controlsFor(withPlans("hr", ["plans.write", "plans.lock", "uploads.write"])),
    { sync: true, lock: true, data: true });
  assert.deepEqual(controlsFor(user("finance")), { sync: false, lock: false, data: false });
  assert.deepEqual(controlsFor(withPlans("finance", ["uploads.write"])),
    { sync: false, lock: false, data: true });
  assert.deepEqual(controlsFor(null), { sync: false, lock: false, data: false });
});

test("decisions, downloads and their URLs", () => {
  assert.deepEqual(decisionRequest("r1", "hr_approve"),
    ["/runs/r1/approve", { action: "hr_approve" }]);
  assert.deepEqual(decisionRequest("r1", "reject", "wrong pool"),
    ["/runs/r1/approve", { action: "reject", comment: "wrong pool" }]);
  assert.deepEqual(decisionRequest("r1", "finalize", "ok"), ["/runs/r1/finalize", { comment: "ok" }]);

  const none = { workbook: false, statements: false, statement: false, myTeam: false };
  assert.deepEqual(downloadsFor(user("auditor"), run("draft")),
    { ...none, workbook: true, statements: true, statement: true });
  assert.deepEqual(downloadsFor(user("hr"), run("finalized")),
    { ...none, workbook: true, statements: true, statement: true });
  assert.deepEqual(downloadsFor(user("readonly"), run("finalized")), none);
  assert.deepEqual(downloadsFor(user("finance"), run("running")), none);

  assert.deepEqual(workbookDownload("r1"), { path: "/runs/r1/workbook", filename: "run-r1-audit.xlsx" });
  assert.deepEqual(statementRequest("r1", " E 01/2 ", "xlsx"), { path: "/reports/individual-statement",
    body: { run_id: "r1", employee_ref: "E 01/2", format: "xlsx" }, filename: "statement-E_01_2.xlsx" });
  assert.throws(() => statementRequest("r1", "  "), /employee reference/);
  const job = statementsJob("r1");
  assert.deepEqual([job.path, job.body, job.download("j9"), job.filename],
    ["/runs/r1/statements", { format: "pdf" }, "/reports/jobs/j9/download", "statements-r1.zip"]);
});

test("a manager downloads their team's statements once the run is finalized", () => {
  const none = { workbook: false, statements: false, statement: false, myTeam: false };
  // before finalisation: one employee's statement, no zip; the "all statements" zip is never
  // offered to a manager (the server would give them their teams only anyway)
  for (const status of ["draft", "manager_approved", "hr_approved", "finance_approved"]) {
    assert.deepEqual(downloadsFor(user("manager"), run(status)), { ...none, statement: true });
  }
  assert.deepEqual(downloadsFor(user("manager"), run("finalized")),
    { ...none, statement: true, myTeam: true });
  assert.deepEqual(downloadsFor(user("manager"), run("failed")), none);
  assert.deepEqual(downloadsFor({ role: "manager", permissions: [] }, run("finalized")), none);
  const mine = statementsJob("r1", "pdf", true);
  assert.deepEqual([mine.path, mine.body, mine.download("j9"), mine.filename],
    ["/runs/r1/statements", { format: "pdf" }, "/reports/jobs/j9/download",
      "my-team-statements-r1.zip"]);
});

test("run states read as what the run waits for, never the bare state id", () => {
  assert.equal(stateLabel("draft"), "Computed: waiting for manager approval");
  assert.equal(stateLabel("manager_approved"), "Approved by the manager: waiting for HR approval");
  assert.equal(stateLabel("hr_approved"), "Approved by HR: waiting for finance approval");
  assert.equal(stateLabel("finance_approved"), "Approved by finance: waiting to be finalized");
  assert.equal(stateLabel("finalized"), "Finalized");
  assert.equal(stateLabel("some_new_state"), "some new state");
});

test("lock, finalize and reject ask first; approvals do not", () => {
  for (const action of ["lock", "finalize", "reject"]) {
    const question = confirmation(action);
    assert.ok(question.title.endsWith("?") && question.text.length > 20 && question.confirm);
  }
  assert.match(confirmation("finalize").text, /cannot be undone/);
  assert.equal(confirmation("manager_approve"), null);
});

test("a problem's cell reference splits into sheet and address", () => {
  assert.deepEqual(splitCell("Steps!C3"), ["Steps", "C3"]);
  assert.deepEqual(splitCell("'My ''odd'' sheet'!$AB$12"), ["My 'odd' sheet", "AB12"]);
  assert.equal(splitCell("Steps"), null);
  assert.equal(splitCell("Steps!C"), null);
});

test("history names people, their role and the time in UTC; the stage when roles differ", () => {
  const entry = { action: "finance_approve", actor_user_id: "u1", actor_name: "Jane Smith",
    actor_role: "finance", at: "2026-12-07T14:02:31.123456+00:00", comment: null };
  assert.equal(historyLine(entry), "Approved by Jane Smith (finance), 7 Dec 2026 14:02 UTC");
  assert.equal(historyLine({ ...entry, actor_role: "admin" }),
    "Approved by Jane Smith (admin) for the finance stage, 7 Dec 2026 14:02 UTC");
  assert.equal(historyLine({ ...entry, action: "reject", comment: "fix E7's level" }),
    "Rejected by Jane Smith (finance), 7 Dec 2026 14:02 UTC — fix E7's level");
  assert.equal(historyLine({ ...entry, action: "finalize", actor_role: "admin" }),
    "Finalized by Jane Smith (admin), 7 Dec 2026 14:02 UTC");
  assert.equal(historyLine({ ...entry, actor_name: null }),
    "Approved by a former finance user, 7 Dec 2026 14:02 UTC");
  // an offset other than UTC is converted, not cut off
  assert.equal(whenLabel("2026-01-01T01:30:00+02:00"), "31 Dec 2025 23:30 UTC");
  assert.equal(whenLabel("not a time"), "not a time");
});
