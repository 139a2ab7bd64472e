// The run section of the task pane page: data upload, mapping confirmation, run progress
// and totals, approvals, downloads. DOM only; the decisions are in runs.js and the work in
// pane.js.

import { confirmAction } from "./confirm.js";
import { canSeeInquiries, finalizeBlock, inquiryLines } from "./inquiries.js";
import {
  approvalButtons, controlsFor, downloadsFor, historyLine, progressOf, stateLabel, totalsLines,
} from "./runs.js";

const $ = (id) => document.getElementById(id);

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  Object.assign(node, attributes);
  return node;
}

/** Save a downloaded blob under `filename` (an <a download> click on an object URL). */
export function saveFile({ blob, filename }) {
  const url = URL.createObjectURL(blob);
  const link = element("a", undefined, { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export class RunPanel {
  /** `planId()` resolves to the plan to run; `guarded(button, work)` and `say(text, kind)`
   * come from the page (button disabling, the log). */
  constructor({ pane, planId, guarded, say, FieldError = Error }) {
    Object.assign(this, { pane, planId, guarded, say, FieldError });
    this.uploadId = null;
    this.rows = [];
    this.run = null;
    this.bind();
  }

  bind() {
    $("upload-file").addEventListener("click", () => this.guarded($("upload-file"), async () => {
      const file = $("data-file").files[0];
      if (!file) throw new this.FieldError("data-file", "Choose a CSV or XLSX file first");
      const upload = await this.pane.uploadFile(file);
      this.say(`Uploaded ${file.name}`, "ok");
      await this.showMapping(upload.id);
    }));
    $("upload-sheet").addEventListener("click", () => this.guarded($("upload-sheet"), async () => {
      const { upload, rows } = await this.pane.uploadActiveSheet();
      this.say(`Uploaded the active sheet: ${rows} row(s)`, "ok");
      await this.showMapping(upload.id);
    }));
    $("confirm-mapping").addEventListener("click",
      () => this.guarded($("confirm-mapping"), () => this.confirm()));
    $("start-run").addEventListener("click", () => this.guarded($("start-run"), async () => {
      const accepted = await this.pane.startRun(await this.planId(), this.uploadId);
      this.say(`Run ${accepted.run_id} started`);
      await this.follow(accepted.run_id);
      return false; // one run per confirmed upload
    }));
    $("latest-run").addEventListener("click", () => this.guarded($("latest-run"), async () => {
      const run = await this.pane.latestRun(await this.planId());
      if (!run) throw new Error("This plan has no run yet");
      this.show(run);
      if (progressOf(run).finished === false) await this.follow(run.id);
    }));
    $("write-results").addEventListener("click",
      () => this.guarded($("write-results"), () => this.results()));
    $("show-tape").addEventListener("click", () => this.guarded($("show-tape"), () => {
      const ref = $("tape-ref").value.trim();
      if (!ref) throw new this.FieldError("tape-ref", "Type an employee reference first");
      return this.showTape(ref);
    }));
    $("download-workbook").addEventListener("click", () => this.guarded($("download-workbook"),
      async () => this.saved(await this.pane.downloadWorkbook(this.run.id))));
    $("download-statements").addEventListener("click", () => this.guarded(
      $("download-statements"), async () => {
        try {
          return this.saved(await this.pane.downloadStatements(this.run.id, (p) => {
            $("run-state").textContent = `Statements ${p.done ?? 0}/${p.total ?? "…"}`;
          }));
        } finally {
          this.progress(this.run); // the run's own state again, not the job's count
        }
      },
    ));
    $("download-my-team").addEventListener("click", () => this.guarded(
      $("download-my-team"), async () => this.saved(await this.pane.downloadMyTeamStatements(
        this.run.id, (p) => { $("run-state").textContent = `Statements ${p.done ?? 0}/${p.total ?? "…"}`; })),
    ));
    $("download-statement").addEventListener("click", () => this.guarded(
      $("download-statement"), async () => this.saved(
        await this.pane.downloadStatement(this.run.id, $("statement-ref").value)),
    ));
  }

  /** Results sheet of the shown run; selecting one of its rows shows that employee's tape. */
  async results() {
    const written = await this.pane.writeResults(this.run);
    this.say(`Results sheet: ${written.rows} employee(s)`
      + (written.compared ? ", compared with the last finalized run" : "")
      + (written.pools ? `, ${written.pools} pool group(s)` : ""), "ok");
    if (!this.following) {
      this.following = await this.pane.followResultsSelection((ref) => {
        $("tape-ref").value = ref;
        this.showTape(ref).catch((error) => this.say(error.message, "error"));
      });
    }
  }

  async showTape(ref) {
    const lines = await this.pane.tape(this.run.id, ref);
    $("tape-title").textContent = `Tape of ${ref}`;
    $("tape").replaceChildren(...lines.map((line) => element("li", line)));
    $("tape-box").hidden = false;
  }

  saved(file) {
    saveFile(file);
    this.say(`Downloaded ${file.filename}`, "ok");
  }

  async showMapping(uploadId) {
    this.uploadId = uploadId;
    $("start-run").disabled = true;
    this.rows = await this.pane.suggestMapping(uploadId, await this.planId());
    const body = $("mapping").tBodies[0];
    body.replaceChildren(...this.rows.map((row) => this.mappingRow(row)));
    $("mapping-problems").replaceChildren();
    $("mapping-box").hidden = false;
  }

  mappingRow(row) {
    const select = element("select", undefined, { name: row.key });
    select.append(element("option", "(none)", { value: "" }),
      ...row.options.map((column) => element("option", column, { value: column })));
    select.value = row.column ?? "";
    const line = element("tr");
    line.className = row.column && row.confidence < 0.9 ? "weak" : "";
    const match = row.column ? `${Math.round(row.confidence * 100)}% ${row.source ?? ""}` : "—";
    line.append(element("td", `${row.label}${row.required ? " *" : ""}`, { title: row.key }),
      element("td"), element("td", match));
    line.children[1].append(select);
    return line;
  }

  async confirm() {
    const choices = {};
    for (const select of $("mapping").querySelectorAll("select")) choices[select.name] = select.value;
    const result = await this.pane.confirmMapping(this.uploadId, await this.planId(), this.rows,
      choices);
    $("mapping-problems").replaceChildren(...result.problems.map((p) => element("li", p.message)));
    if (!result.ready) {
      this.say(`The data is not ready: ${result.problems.length} problem(s)`, "error");
      return true;
    }
    $("mapping-box").hidden = true;
    $("start-run").disabled = false;
    const rows = result.upload.summary?.rows;
    this.say(`Data ready${rows ? `: ${rows} row(s)` : ""}; start the run`, "ok");
    return true;
  }

  async follow(runId) {
    $("run-view").hidden = false;
    const final = await this.pane.followRun(runId, (update) => this.progress(update));
    this.show(final);
    const state = progressOf(final);
    this.say(state.label, state.failed ? "error" : "ok");
  }

  progress(update) {
    const state = progressOf(update);
    if (state.percent !== null) $("run-progress").value = state.percent;
    $("run-state").textContent = state.label;
  }

  /** Render a whole run (GET /runs/{id}): progress, totals, approvals, downloads. */
  show(run) {
    this.run = run;
    $("run-view").hidden = false;
    const started = run.started_at ? `${run.started_at.slice(0, 16).replace("T", " ")} UTC` : "";
    $("run-id").textContent = started ? `Run started ${started}` : "Run";
    $("run-id").title = `Run id ${run.id}`;
    $("run-id").dataset.runId = run.id;
    this.progress(run);
    $("totals").replaceChildren(...totalsLines(run.totals).flatMap(([label, value]) =>
      [element("dt", label), element("dd", value)]));
    this.showApprovals(run);
    const downloads = downloadsFor(this.pane.user, run);
    const computed = !["queued", "running", "failed"].includes(run.status);
    $("results-box").hidden = !computed;
    $("tape-box").hidden = true;
    $("download-workbook").hidden = !downloads.workbook;
    $("download-statements").hidden = !downloads.statements;
    $("download-my-team").hidden = !downloads.myTeam;
    $("statement-box").hidden = !downloads.statement;
    $("run-view").dataset.viewer = this.pane.user?.email || "";
  }

  showApprovals(run) {
    const history = run.approvals?.history || [];
    $("approval-state").textContent = stateLabel(run.status);
    $("approval-state").dataset.status = run.status;
    $("approval-history").replaceChildren(...history.map((h) => element("li", historyLine(h))));
    const { buttons, note } = approvalButtons(this.pane.user, run);
    $("approval-note").textContent = note;
    this.showInquiries(run);
    $("comment-box").hidden = buttons.length === 0;
    $("approval-buttons").replaceChildren(...buttons.map((button) => {
      const node = element("fluent-button", button.label,
        button.action === "reject" ? {} : { appearance: "accent" });
      node.dataset.action = button.action;
      if (button.action === "reject") node.className = "reject";
      node.addEventListener("click", () => this.guarded(node, async () => {
        const comment = $("comment").value.trim();
        if (button.needsComment && !comment) {
          throw new this.FieldError("comment", "A reject needs a comment: say what to fix");
        }
        if (!await confirmAction(button.action)) return true;
        const updated = await this.pane.decide(run.id, button.action, comment || undefined);
        $("comment").value = "";
        this.say(`${button.label}: ${stateLabel(updated.status)}`, "ok");
        this.show(updated);
        return false;
      }));
      return node;
    }));
  }

  /** Inquiries on the run and whether they block its finalize (visible to approvers). */
  showInquiries(run) {
    $("inquiry-note").textContent = "";
    $("inquiry-list").replaceChildren();
    if (!canSeeInquiries(this.pane.user) || !this.pane.api.inquiries) return;
    this.pane.api.inquiries(run.id).then((found) => {
      if (this.run?.id !== run.id) return;
      $("inquiry-note").textContent = finalizeBlock(found);
      $("inquiry-list").replaceChildren(...inquiryLines(found).map((line) => element("li", line)));
    }).catch(() => { $("inquiry-note").textContent = "Inquiries could not be loaded."; });
  }

  /** After sign-in: this user's controls, and the open run seen with their buttons. */
  async refresh() {
    const controls = controlsFor(this.pane.user);
    $("data-box").hidden = !controls.data;
    $("start-run").hidden = !controls.data;
    $("mapping-box").hidden = $("mapping-box").hidden || !controls.data;
    if (this.run) this.show(await this.pane.api.getRun(this.run.id));
  }
}
