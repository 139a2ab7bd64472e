// The task pane's actions, independent of the page: sign in, sync the workbook with the
// server, run the test vectors, lock; then upload data, confirm the column mapping, start
// a run and follow it, approve, download. `excel` is the Excel namespace (Excel.run);
// `wait` paces polling and `openSocket` opens the run's progress WebSocket (both injectable).

import { ApiError } from "./api.js";
import { writeRows } from "./chunks.js";
import { locateRequestErrors } from "./diagnostics.js";
import { confirmMapping, decisionRequest, mappingRows, RUNNING, statementRequest,
  splitCell, statementsJob, workbookDownload } from "./runs.js";
import { poolSummary, RESULTS_SHEET, resultsTable, tapeLines } from "./results.js";
import { activeSheetCsv } from "./sheetdata.js";
import { compare, populations, requestRows, stepPlaces } from "./vectors.js";
import { readPlan, readTests, writeDiagnostics, writePlanMeta, writeTestResults }
  from "./workbook.js";

const POLL_MS = 400;
const defaultWait = () => new Promise((resolve) => { setTimeout(resolve, POLL_MS); });
const defaultSocket = globalThis.WebSocket ? (url) => new globalThis.WebSocket(url) : null;

export class Pane {
  constructor({ api, excel, wait = defaultWait, openSocket = defaultSocket }) {
    this.api = api;
    this.excel = excel;
    this.wait = wait;
    this.openSocket = openSocket;
    this.layout = null;
    this.user = null;
  }

  /** Sign in; `user` ({id, role, email, permissions}) decides which approval and download
   * buttons are offered. */
  async signIn(email, password) {
    const session = await this.api.signIn(email, password);
    this.layout = await this.api.layout();
    const me = await this.api.me();
    this.user = { id: me.user_id, role: me.role, email: me.email,
      permissions: me.permissions || [] };
    return session;
  }

  async signOut() {
    await this.api.signOut();
    this.user = null;
  }

  /** Read the workbook, store it as the plan's document, write the answers back.
   * Returns {planId, valid, planHash, problems: [located diagnostics]}. */
  async sync() {
    return this.excel.run(async (context) => {
      const { document, rows, errors, planId: known } = await readPlan(context, this.layout);
      if (errors.length) {
        await writeDiagnostics(context, this.layout, document, rows, [], errors);
        return { planId: known, valid: false, planHash: null, status: null, problems: errors };
      }
      let planId = known;
      if (!planId) {
        const created = await this.api.createPlan({ name: document.name || "Untitled plan" });
        planId = created.id;
        await writePlanMeta(context, this.layout, { plan_id: planId, status: created.status,
          version: created.version });
      }
      let saved;
      try {
        saved = await this.api.putDocument(planId, document);
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 422) throw error;
        const located = locateRequestErrors(this.layout, rows, error.errors);
        await writeDiagnostics(context, this.layout, document, rows, [], located);
        return { planId, valid: false, planHash: null, status: null, problems: located };
      }
      const problems = await writeDiagnostics(context, this.layout, document, rows,
        saved.diagnostics);
      await writePlanMeta(context, this.layout, { plan_id: planId, status: saved.plan.status,
        version: saved.plan.version });
      return { planId, valid: saved.valid, planHash: saved.plan_hash, status: saved.plan.status,
        problems };
    });
  }

  /** Evaluate the Tests sheet's vectors on the synced plan, each population on its own;
   * returns [{row, passed, message}]. */
  async runTests(planId) {
    return this.excel.run(async (context) => {
      const vectors = await readTests(context, this.layout);
      if (!vectors.length) return [];
      const { document } = await readPlan(context, this.layout);
      // each population (one row, or the rows of one Group) in its own evaluation
      const responses = [];
      for (const population of populations(vectors)) {
        responses.push(await this.api.evaluate(planId, requestRows(population)));
      }
      const results = compare(vectors, responses, stepPlaces(document));
      await writeTestResults(context, this.layout, results);
      return results;
    });
  }

  /** Lock the plan and write its status and hash into the Plan sheet. */
  async lock(planId) {
    const plan = await this.api.lock(planId);
    await this.excel.run(async (context) => {
      await writePlanMeta(context, this.layout, { plan_id: plan.id, status: plan.status,
        plan_hash: plan.plan_hash, version: plan.version });
    });
    return plan;
  }

  /** Select a problem's cell ("Steps!C3"): its sheet activated, the cell selected. */
  async selectCell(reference) {
    const found = splitCell(reference);
    if (!found) throw new Error(`Not a cell reference: ${reference}`);
    await this.excel.run(async (context) => {
      const sheet = context.workbook.worksheets.getItem(found[0]);
      sheet.activate();
      sheet.getRange(found[1]).select();
      await context.sync();
    });
  }

  /** The plan id the workbook holds (Plan sheet, written by the first sync), or null. */
  async planIdFromSheet() {
    return this.excel.run(async (context) => (await readPlan(context, this.layout)).planId);
  }

  /** Upload a file the user picked (a File); resolves to the parsed upload. */
  uploadFile(file) {
    return this.api.upload(file, file.name, "employees");
  }

  /** Upload the active sheet's used range as CSV; resolves to {upload, rows}. */
  async uploadActiveSheet() {
    const data = await this.excel.run((context) => activeSheetCsv(context));
    const blob = new Blob([data.csv], { type: "text/csv" });
    const upload = await this.api.upload(blob, `${data.name}.csv`, "employees");
    return { upload, rows: data.rows };
  }

  /** The server's mapping suggestions for the plan, as rows to show and confirm. */
  async suggestMapping(uploadId, planId) {
    return mappingRows(await this.api.mappingSuggestions(uploadId, planId));
  }

  /** Send the confirmed mapping and wait for validation: {ready, upload, problems}; the
   * problems name the input (a local check) or the file row and column (the server's). */
  async confirmMapping(uploadId, planId, rows, choices) {
    const { mapping, problems } = confirmMapping(rows, choices);
    if (problems.length) return { ready: false, upload: null, problems };
    let upload = await this.api.mapUpload(uploadId, planId, mapping);
    while (upload.status === "processing") {
      await this.wait();
      upload = await this.api.getUpload(uploadId);
    }
    if (upload.status === "ready") return { ready: true, upload, problems: [] };
    const report = await this.api.validation(uploadId);
    const listed = (report.problems || []).map((p) => ({
      key: p.input_key, row: p.row, column: p.column,
      message: `row ${p.row}, column '${p.column}': ${p.message}` }));
    return { ready: false, upload,
      problems: listed.length ? listed : [{ message: upload.error || "validation failed" }] };
  }

  /** Start a run of the locked plan over the ready upload: {run_id, status, snapshot_hash}.
   * The idempotency key makes a double click start one run, not two. */
  startRun(planId, uploadId) {
    return this.api.startRun({ plan_id: planId, upload_id: uploadId }, `addin-${planId}-${uploadId}`);
  }

  /** Follow a run until it has computed or failed, calling `onUpdate` with each progress
   * event (WebSocket) and with the run itself; resolves to the final run (with totals). */
  async followRun(runId, onUpdate = () => {}) {
    try {
      await this.watchSocket(runId, onUpdate);
    } catch {
      // no socket (or it failed): polling the run below gives the same answers
    }
    for (;;) {
      const run = await this.api.getRun(runId);
      onUpdate(run);
      if (!RUNNING.has(run.status)) return run;
      await this.wait();
    }
  }

  watchSocket(runId, onUpdate) {
    return new Promise((resolve, reject) => {
      if (!this.openSocket) {
        reject(new Error("no WebSocket here"));
        return;
      }
      const socket = this.openSocket(this.api.eventsUrl(runId));
      socket.onmessage = (event) => onUpdate(JSON.parse(event.data));
      socket.onerror = () => reject(new Error("the progress socket failed"));
      socket.onclose = (event) => (event.code === 1000 ? resolve()
        : reject(new Error(`the progress socket closed (${event.code})`)));
    });
  }

  /** The newest run of the plan, or null. */
  async latestRun(planId) {
    const page = await this.api.latestRun(planId);
    return page.items.length ? this.api.getRun(page.items[0].id) : null;
  }

  /** Every result row of `runId` the user may see, page by page. */
  async allResults(runId) {
    const rows = [];
    let cursor = null;
    do {
      const page = await this.api.results(runId, cursor);
      rows.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    return rows;
  }

  /** The payouts of the plan's newest finalized run other than `run`, or null. */
  async previousPayouts(run) {
    const page = await this.api.finalizedRuns(run.plan_id);
    const previous = page.items.find((item) => item.id !== run.id);
    if (!previous) return null;
    const step = run.totals?.payout_step;
    const rows = await this.allResults(previous.id);
    return new Map(rows.map((row) => [row.employee_ref, row.values?.[step] ?? null]));
  }

  /** Write the Results sheet of `run` (GET /runs/{id} with totals): one row per employee the
   * user may see, the change against the previous finalized run, then the pool summary.
   * Written in row chunks, so 10k+ employees stay under Excel's request limit. */
  async writeResults(run) {
    const payoutStep = run.totals?.payout_step;
    const { document } = await this.excel.run((context) => readPlan(context, this.layout));
    const steps = [...(document.steps || [])].sort((a, b) => a.order - b.order)
      .map((step) => step.name);
    const results = await this.allResults(run.id);
    const previous = await this.previousPayouts(run);
    const table = resultsTable(results, payoutStep, steps, previous);
    const pools = poolSummary(run.totals);
    await this.excel.run(async (context) => {
      const sheets = context.workbook.worksheets;
      let sheet = sheets.getItemOrNullObject(RESULTS_SHEET);
      await context.sync();
      if (sheet.isNullObject) sheet = sheets.add(RESULTS_SHEET);
      else sheet.getRange().clear();
      await context.sync();
      await writeRows(context, sheet, 1, "A", [table.header, ...table.rows]);
      if (pools.rows.length) {
        await writeRows(context, sheet, table.rows.length + 3, "A", [pools.header, ...pools.rows]);
      }
      sheet.activate();
      await context.sync();
    });
    this.resultsRows = table.rows.length; // rows below them are the pool summary
    return { rows: table.rows.length, pools: pools.rows.length,
      compared: previous !== null };
  }

  /** One employee's tape, as lines for the pane. */
  async tape(runId, employeeRef) {
    const ref = String(employeeRef || "").trim().replace(/^'/, "");
    if (!ref) throw new Error("Type an employee reference, or select a row of the Results sheet");
    return tapeLines(await this.api.tape(runId, ref));
  }

  /** Call `onEmployee(ref)` when the user selects a row of the Results sheet (Excel's
   * onSelectionChanged); false where the host has no selection events. */
  async followResultsSelection(onEmployee) {
    return this.excel.run(async (context) => {
      const sheet = context.workbook.worksheets.getItem(RESULTS_SHEET);
      if (!sheet.onSelectionChanged) return false;
      sheet.onSelectionChanged.add(async (event) => {
        const row = Number(/\d+/.exec(event.address)?.[0]);
        if (!row || row < 2 || row > 1 + (this.resultsRows ?? 0)) return; // header, pools
        const ref = await this.excel.run(async (inner) => {
          const cell = inner.workbook.worksheets.getItem(RESULTS_SHEET).getRange(`A${row}`);
          cell.load("values");
          await inner.sync();
          return cell.values[0][0];
        });
        if (ref) onEmployee(String(ref));
      });
      await context.sync();
      return true;
    });
  }

  /** Approve, reject (with a comment) or finalize; resolves to the updated run. */
  decide(runId, action, comment) {
    const [path, body] = decisionRequest(runId, action, comment);
    return this.api.request("POST", path, body);
  }

  /** {blob, filename} of the run's audit workbook. */
  downloadWorkbook(runId) {
    const { path, filename } = workbookDownload(runId);
    return this.api.download(path, filename);
  }

  /** {blob, filename} of one employee's statement. */
  downloadStatement(runId, employeeRef, format = "pdf") {
    const { path, body, filename } = statementRequest(runId, employeeRef, format);
    return this.api.download(path, filename, body);
  }

  /** {blob, filename}: every statement of the run in one zip (a bulk job on the workers;
   * `onProgress` gets {done, total} while it renders). */
  async downloadStatements(runId, onProgress = () => {}, format = "pdf", mine = false) {
    const request = statementsJob(runId, format, mine);
    let job = await this.api.request("POST", request.path, request.body);
    while (job.status === "queued" || job.status === "running") {
      onProgress(job.progress || {});
      await this.wait();
      job = await this.api.job(job.id);
    }
    if (job.status !== "done") throw new Error(`statements failed: ${job.error || job.status}`);
    return this.api.download(request.download(job.id), request.filename);
  }

  /** {blob, filename}: a manager's teams' statements of a finalized run in one zip. */
  downloadMyTeamStatements(runId, onProgress = () => {}) {
    return this.downloadStatements(runId, onProgress, "pdf", true);
  }
}
