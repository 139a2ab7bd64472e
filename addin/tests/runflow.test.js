// The pane's run flow against a scripted server (the real PaysheetApi over a fake fetch):
// upload (multipart and tus), mapping confirmation, run progress over the socket and by
// polling, approvals, downloads. The live server is exercised by the browser test.

import assert from "node:assert/strict";
import { test } from "node:test";

import { PaysheetApi } from "../src/api.js";
import { Pane } from "../src/pane.js";
import { fakeExcel, FakeWorkbook } from "./support/fake-excel.js";

/** fetch over `routes`: {"METHOD /path": (request) => [status, body, headers?]}; records calls. */
function fakeServer(routes) {
  const calls = [];
  const fetch = async (url, options) => {
    const path = url.replace(/^.*\/api\/v1/, "");
    const key = `${options.method} ${path.split("?")[0]}`;
    calls.push({ key, path, headers: options.headers, body: options.body });
    const handler = routes[key];
    if (!handler) return new Response(JSON.stringify({ detail: `no route ${key}` }), { status: 404 });
    const [status, body, headers = {}] = await handler({ path, options, calls });
    const payload = body instanceof Blob ? body : body === null ? null : JSON.stringify(body);
    return new Response(payload, { status, headers });
  };
  return { fetch, calls };
}

function paneWith(routes, extra = {}) {
  const server = fakeServer(routes);
  const api = new PaysheetApi("https://paysheet.test", server.fetch);
  api.token = "t0k";
  const workbook = extra.workbook || new FakeWorkbook(["Plan"]);
  const pane = new Pane({ api, excel: fakeExcel(workbook), wait: async () => {},
    openSocket: extra.openSocket || null });
  return { pane, api, server };
}

const SUGGESTIONS = {
  upload_id: "u1", plan_id: "p1", columns: ["employee_ref", "base_salary"], unmapped_columns: [],
  suggestions: [
    { key: "employee_ref", label: "Employee", dtype: "text", scope: "employee", required: true,
      column: "employee_ref", confidence: 0.98, source: "exact", alternatives: [] },
    { key: "base_salary", label: "Base salary", dtype: "decimal", scope: "employee",
      required: true, column: "base_salary", confidence: 0.98, source: "exact", alternatives: [] },
  ],
};

test("the active sheet goes up as a multipart CSV, then mapping waits for validation", async () => {
  const workbook = new FakeWorkbook(["Plan"]);
  const data = workbook.addSheet("People");
  [["employee_ref", "base_salary"], ["E1", 1000], ["E2", 2000.5]].forEach(([a, b], r) => {
    data.set(`A${r + 1}`, a);
    data.set(`B${r + 1}`, b);
  });
  let polls = 0;
  const { pane, server } = paneWith({
    "POST /uploads": async ({ options }) => {
      assert.ok(options.body instanceof FormData);
      assert.equal(options.body.get("kind"), "employees");
      const file = options.body.get("file");
      assert.equal(file.name, "People.csv");
      assert.equal(await file.text(), "employee_ref,base_salary\nE1,1000\nE2,2000.5\n");
      assert.equal(options.headers["Content-Type"], undefined, "the browser sets the boundary");
      return [201, { id: "u1", status: "received" }];
    },
    "GET /uploads/u1/mapping-suggestions": () => [200, SUGGESTIONS],
    "POST /uploads/u1/map": () => [202, { id: "u1", status: "processing" }],
    "GET /uploads/u1": () => [200, { id: "u1", status: (polls += 1) < 3 ? "processing" : "ready",
      summary: { rows: 2 } }],
  }, { workbook });
  const { upload, rows } = await pane.uploadActiveSheet();
  assert.equal(upload.id, "u1");
  assert.equal(rows, 2);
  const suggested = await pane.suggestMapping("u1", "p1");
  assert.equal(server.calls.at(-1).path, "/uploads/u1/mapping-suggestions?plan_id=p1");
  const result = await pane.confirmMapping("u1", "p1", suggested, {});
  assert.equal(result.ready, true);
  assert.equal(polls, 3, "polled until the upload left 'processing'");
  const map = server.calls.find((c) => c.key === "POST /uploads/u1/map");
  assert.equal(map.path, "/uploads/u1/map?plan_id=p1");
  assert.deepEqual(JSON.parse(map.body), { employee_ref: "employee_ref", base_salary: "base_salary" });
});

test("a local mapping problem is not sent; a failed validation lists rows and columns", async () => {
  const { pane, server } = paneWith({
    "POST /uploads/u1/map": () => [202, { id: "u1", status: "processing" }],
    "GET /uploads/u1": () => [200, { id: "u1", status: "failed", error: "validation found 1 problem(s)" }],
    "GET /uploads/u1/validation": () => [200, { problems: [{ row: 3, column: "base_salary",
      input_key: "base_salary", message: "not a decimal number" }] }],
  });
  const rows = (await import("../src/runs.js")).mappingRows(SUGGESTIONS);
  const local = await pane.confirmMapping("u1", "p1", rows, { base_salary: "" });
  assert.equal(local.ready, false);
  assert.deepEqual(server.calls, []);
  const failed = await pane.confirmMapping("u1", "p1", rows, {});
  assert.equal(failed.ready, false);
  assert.deepEqual(failed.problems.map((p) => p.message),
    ["row 3, column 'base_salary': not a decimal number"]);
});

test("a large file goes through tus in chunks", async () => {
  const { api, server } = paneWith({
    "POST /uploads": ({ options }) => {
      assert.equal(options.headers["Tus-Resumable"], "1.0.0");
      assert.equal(options.headers["Upload-Length"], "10");
      assert.equal(options.headers["Upload-Metadata"], `filename ${btoa("big.csv")},kind ${btoa("employees")}`);
      return [201, { id: "u2", status: "received" }];
    },
    "PATCH /uploads/u2": () => [204, null],
    "GET /uploads/u2": () => [200, { id: "u2", status: "received" }],
  });
  const upload = await api.uploadTus(new Blob(["0123456789"]), "big.csv", "employees", 4);
  assert.equal(upload.id, "u2");
  const patches = server.calls.filter((c) => c.key === "PATCH /uploads/u2");
  assert.deepEqual(patches.map((p) => p.headers["Upload-Offset"]), ["0", "4", "8"]);
  assert.deepEqual(await Promise.all(patches.map((p) => p.body.text())), ["0123", "4567", "89"]);
});

test("a run is followed over its socket, then read once more for totals", async () => {
  const opened = [];
  const openSocket = (url) => {
    const socket = {};
    opened.push(url);
    queueMicrotask(() => {
      for (const phase of ["load", "compute", "persist"]) {
        socket.onmessage({ data: JSON.stringify({ status: "running", phase, rows_total: 3 }) });
      }
      socket.onclose({ code: 1000 });
    });
    return socket;
  };
  const final = { id: "r1", status: "draft", totals: { headcount: 3 }, approvals: { history: [] } };
  const { pane, server } = paneWith({
    "POST /runs": () => [202, { run_id: "r1", status: "queued", snapshot_hash: "s" }],
    "GET /runs/r1": () => [200, final],
  }, { openSocket });
  const accepted = await pane.startRun("p1", "u1");
  assert.equal(accepted.run_id, "r1");
  const start = server.calls[0];
  assert.deepEqual(JSON.parse(start.body), { plan_id: "p1", upload_id: "u1" });
  assert.equal(start.headers["Idempotency-Key"], "addin-p1-u1");
  const seen = [];
  const run = await pane.followRun("r1", (update) => seen.push(update.phase ?? update.status));
  assert.deepEqual(opened, ["wss://paysheet.test/api/v1/runs/r1/events?token=t0k"]);
  assert.deepEqual(seen, ["load", "compute", "persist", "draft"]);
  assert.equal(run.totals.headcount, 3);
});

test("without a socket the run is polled until it leaves queued/running", async () => {
  const states = ["queued", "running", "failed"];
  const { pane } = paneWith({
    "GET /runs/r1": () => [200, { id: "r1", status: states.shift(), error: "bad data" }],
  });
  const seen = [];
  const run = await pane.followRun("r1", (update) => seen.push(update.status));
  assert.deepEqual(seen, ["queued", "running", "failed"]);
  assert.equal(run.error, "bad data");
});

test("decisions, the audit workbook and the bulk statements job", async () => {
  let jobPolls = 0;
  const { pane, server } = paneWith({
    "POST /runs/r1/approve": ({ options }) => [200, { id: "r1", status: JSON.parse(options.body).action === "reject" ? "draft" : "finance_approved" }],
    "POST /runs/r1/finalize": () => [200, { id: "r1", status: "finalized" }],
    "GET /runs/r1/workbook": () => [200, new Blob(["PK-xlsx"])],
    "POST /runs/r1/statements": () => [202, { id: "j1", status: "queued", progress: {} }],
    "GET /reports/jobs/j1": () => [200, { id: "j1", status: (jobPolls += 1) < 2 ? "running" : "done",
      progress: { done: jobPolls, total: 2 } }],
    "GET /reports/jobs/j1/download": () => [200, new Blob(["PK-zip"])],
    "POST /reports/individual-statement": () => [200, new Blob(["%PDF"])],
  });
  assert.equal((await pane.decide("r1", "finance_approve")).status, "finance_approved");
  assert.deepEqual(JSON.parse(server.calls.at(-1).body), { action: "finance_approve" });
  assert.equal((await pane.decide("r1", "finalize", "ship it")).status, "finalized");
  assert.deepEqual(JSON.parse(server.calls.at(-1).body), { comment: "ship it" });

  const workbook = await pane.downloadWorkbook("r1");
  assert.equal(workbook.filename, "run-r1-audit.xlsx");
  assert.equal(await workbook.blob.text(), "PK-xlsx");
  assert.equal(server.calls.at(-1).headers.Authorization, "Bearer t0k");

  const progress = [];
  const zip = await pane.downloadStatements("r1", (p) => progress.push(p));
  assert.equal(zip.filename, "statements-r1.zip");
  assert.equal(await zip.blob.text(), "PK-zip");
  assert.deepEqual(progress, [{}, { done: 1, total: 2 }]);

  const one = await pane.downloadStatement("r1", "E7");
  assert.equal(one.filename, "statement-E7.pdf");
  assert.deepEqual(JSON.parse(server.calls.at(-1).body),
    { run_id: "r1", employee_ref: "E7", format: "pdf" });
});

test("a manager's team statements: one queued job, followed, then its zip", async () => {
  let polls = 0;
  const { pane, server } = paneWith({
    "POST /runs/r1/statements": () => [202, { id: "j2", status: "queued", progress: {} }],
    "GET /reports/jobs/j2": () => [200, { id: "j2", status: (polls += 1) < 2 ? "running" : "done",
      progress: { done: polls, total: 3 } }],
    "GET /reports/jobs/j2/download": () => [200, new Blob(["PK-team"])],
  });
  const progress = [];
  const zip = await pane.downloadMyTeamStatements("r1", (p) => progress.push(p));
  assert.equal(zip.filename, "my-team-statements-r1.zip");
  assert.equal(await zip.blob.text(), "PK-team");
  assert.deepEqual(progress, [{}, { done: 1, total: 3 }]);
  const posted = server.calls.find((call) => call.key === "POST /runs/r1/statements");
  assert.deepEqual(JSON.parse(posted.body), { format: "pdf" }, "the server picks the teams");
  assert.equal(server.calls.at(-1).headers.Authorization, "Bearer t0k");
});

test("a failed team statements job says why", async () => {
  const { pane } = paneWith({
    "POST /runs/r1/statements": () => [202, { id: "j3", status: "failed", error: "no employee selected" }],
  });
  await assert.rejects(pane.downloadMyTeamStatements("r1"), /no employee selected/);
});

test("a refused decision surfaces the server's problem", async () => {
  const { pane } = paneWith({
    "POST /runs/r1/approve": () => [403, { detail: "four-eyes: you started run r1, so you cannot finance_approve it" }],
  });
  await assert.rejects(pane.decide("r1", "finance_approve"), (error) => {
    assert.equal(error.status, 403);
    assert.match(error.message, /four-eyes/);
    return true;
  });
});
