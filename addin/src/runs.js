// The run side of the pane as plain functions (no DOM, no network): mapping suggestions →
// a confirmed mapping, run progress → what to show, role and run → the approval buttons the
// signed-in user may press, and the download requests. Buttons follow the permissions
// GET /me lists and the approvals rules of server/modules/approvals/service.py (state,
// four-eyes); the server still decides, these only keep the pane from offering what it
// would refuse.

/** Mapping suggestions (GET /uploads/{id}/mapping-suggestions) as rows for the pane:
 * [{key, label, required, column, confidence, source, options}]. `employee_ref` first. */
export function mappingRows(suggestions) {
  const columns = suggestions.columns || [];
  const rows = (suggestions.suggestions || []).map((s) => ({
    key: s.key,
    label: s.label || s.key,
    required: Boolean(s.required),
    column: s.column ?? null,
    confidence: typeof s.confidence === "number" ? s.confidence : 0,
    source: s.source ?? null,
    options: columns,
  }));
  return rows.sort((a, b) => (b.key === "employee_ref") - (a.key === "employee_ref"));
}

/** The user's choices ({key: column or ""}) over the suggested rows → {mapping, problems}.
 * A required input left unmapped, a column chosen twice or a column not in the file is a
 * problem naming the input; the mapping is sent only when there are none. */
export function confirmMapping(rows, choices = {}) {
  const mapping = {};
  const problems = [];
  const usedBy = new Map();
  for (const row of rows) {
    const chosen = Object.hasOwn(choices, row.key) ? choices[row.key] : row.column;
    if (!chosen) {
      if (row.required) problems.push({ key: row.key, message: `'${row.label}' needs a column` });
      continue;
    }
    if (!row.options.includes(chosen)) {
      problems.push({ key: row.key, message: `column '${chosen}' is not in the file` });
      continue;
    }
    if (usedBy.has(chosen)) {
      problems.push({ key: row.key,
        message: `column '${chosen}' is already mapped to '${usedBy.get(chosen)}'` });
      continue;
    }
    usedBy.set(chosen, row.key);
    mapping[row.key] = chosen;
  }
  return { mapping, problems };
}

const PHASES = ["queued", "load", "compute", "persist", "done"];
export const RUNNING = new Set(["queued", "running"]);

/** A run (GET /runs/{id}) or a progress event ({status, phase, rows_done, rows_total})
 * → {label, percent (0..100 or null), finished, failed}. */
export function progressOf(run) {
  const status = run.status;
  const progress = run.progress || run;
  if (status === "failed") {
    return { label: `Failed: ${run.error || "no reason given"}`, percent: null, finished: true,
      failed: true };
  }
  if (!RUNNING.has(status)) {
    return { label: "Computed", percent: 100, finished: true, failed: false };
  }
  const phase = progress.phase || status;
  const step = Math.max(0, PHASES.indexOf(phase));
  const rows = progress.rows_total ? ` · ${progress.rows_total} employees` : "";
  return { label: `${status === "queued" ? "Queued" : `Running: ${phase}`}${rows}`,
    percent: Math.round((step / (PHASES.length - 1)) * 100), finished: false, failed: false };
}

/** The totals worth showing in a pane: [[label, value]]. */
export function totalsLines(totals) {
  if (!totals) return [];
  const lines = [
    ["Employees", String(totals.headcount)],
    [`Total ${totals.payout_step || "payout"}`,
      `${formatAmount(totals.total_payout)} ${totals.currency || ""}`.trim()],
    ["Null payouts", String(totals.null_payouts ?? 0)],
  ];
  if (totals.rows_with_diagnostics) {
    lines.push(["Rows with diagnostics", String(totals.rows_with_diagnostics)]);
  }
  return lines;
}

/** "1234567.5000000000" → "1,234,567.50": grouping by text, never through a float. */
export function formatAmount(text) {
  if (text === null || text === undefined) return "—";
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(text));
  if (!match) return String(text);
  const [, sign, whole, fraction = ""] = match;
  const cents = (fraction + "00").slice(0, 2);
  const rest = fraction.slice(2).replace(/0+$/, "");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${sign}${grouped}.${cents}${rest}`;
}

// Approvals: each action's source state and permission; the reject gate per state.
const APPROVALS = {
  manager_approve: { from: "draft", permission: "runs.approve.manager",
    label: "Approve (manager)" },
  hr_approve: { from: "manager_approved", permission: "runs.approve.hr", label: "Approve (HR)" },
  finance_approve: { from: "hr_approved", permission: "runs.approve.finance",
    label: "Approve (finance)" },
  finalize: { from: "finance_approved", permission: "runs.finalize", label: "Finalize" },
};
const REJECT_GATES = {
  draft: "runs.approve.manager", manager_approved: "runs.approve.hr",
  hr_approved: "runs.approve.finance", finance_approved: "runs.finalize",
};
const WAITING_FOR = {
  draft: "a manager", manager_approved: "HR", hr_approved: "finance",
  finance_approved: "finance or an admin to finalize",
};

// What a run's state means to the people who act on it (the pane's status line).
const STATES = {
  queued: "Queued",
  running: "Running",
  failed: "Failed",
  draft: "Computed: waiting for manager approval",
  manager_approved: "Approved by the manager: waiting for HR approval",
  hr_approved: "Approved by HR: waiting for finance approval",
  finance_approved: "Approved by finance: waiting to be finalized",
  finalized: "Finalized",
};

/** A run status in words ("Waiting for manager approval"), never the bare state id. */
export function stateLabel(status) {
  return STATES[status] || String(status || "").replace(/_/g, " ");
}

// What each decision of the history is called, and the stage (role) it belongs to.
const DECISIONS = {
  manager_approve: ["Approved", "manager"], hr_approve: ["Approved", "hr"],
  finance_approve: ["Approved", "finance"], finalize: ["Finalized", null],
  reject: ["Rejected", null],
};
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** An ISO timestamp as "7 Dec 2026 14:02 UTC" (UTC, so every approver reads the same). */
export function whenLabel(iso) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return String(iso || "");
  const pad = (n) => String(n).padStart(2, "0");
  return `${at.getUTCDate()} ${MONTHS[at.getUTCMonth()]} ${at.getUTCFullYear()} `
    + `${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())} UTC`;
}

/** One history entry in words: "Approved by Jane Smith (finance), 7 Dec 2026 14:02 UTC",
 * the stage named when the actor's role is not the stage's ("… (admin) for the hr stage"),
 * and the comment after a dash. A user who no longer exists is named by role only. */
export function historyLine(entry) {
  const [verb, stage] = DECISIONS[entry.action] || [String(entry.action).replace(/_/g, " "), null];
  const who = entry.actor_name ? `${entry.actor_name} (${entry.actor_role})`
    : `a former ${entry.actor_role} user`;
  const forStage = stage && stage !== entry.actor_role ? ` for the ${stage} stage` : "";
  return `${verb} by ${who}${forStage}, ${whenLabel(entry.at)}`
    + (entry.comment ? ` — ${entry.comment}` : "");
}

// Actions that cannot be taken back: the pane asks first, saying what happens.
const CONFIRMATIONS = {
  lock: ["Lock the plan?", "A locked plan cannot be edited: its steps and its hash are frozen, "
    + "and a change needs a new version.", "Lock plan"],
  finalize: ["Finalize the run?", "Its results are frozen for good and deferred awards are "
    + "written to the ledger. This cannot be undone.", "Finalize"],
  reject: ["Reject the run?", "It goes back to draft, and every approval given so far has to be "
    + "given again.", "Reject"],
};

/** {title, text, confirm} for an action that needs a confirmation, or null. */
export function confirmation(action) {
  const found = CONFIRMATIONS[action];
  return found ? { title: found[0], text: found[1], confirm: found[2] } : null;
}

/** "Steps!C3" (or "'My sheet'!C3") → ["Steps", "C3"]; null when it is not a cell. */
export function splitCell(reference) {
  const match = /^(?:'((?:[^']|'')+)'|([^!]+))!\$?([A-Z]{1,3})\$?(\d+)$/.exec(String(reference));
  if (!match) return null;
  const sheet = match[1] ? match[1].replace(/''/g, "'") : match[2];
  return [sheet, `${match[3]}${match[4]}`];
}

function currentRound(history) {
  const last = history.map((h) => h.action).lastIndexOf("reject");
  return history.slice(last + 1);
}

/** The approval buttons for `user` ({id, role, permissions} from GET /me) on `run`:
 * {buttons: [{action, label, needsComment}], note} — the note says why an approval is not
 * offered (not computed yet, another role's turn, four-eyes, finalized). */
export function approvalButtons(user, run) {
  if (!run || RUNNING.has(run.status) || run.status === "failed") {
    return { buttons: [], note: "Approvals open once the run has computed." };
  }
  if (run.status === "finalized") return { buttons: [], note: "Finalized: nothing to approve." };
  const may = (permission) => (user.permissions || []).includes(permission);
  const round = currentRound(run.approvals?.history || []);
  const buttons = [];
  let note = "";
  const separation = user.separation_of_duties !== false; // the server's default
  const approvedAny = (run.approvals?.history || []).some((h) =>
    h.actor_user_id === user.id && h.action in APPROVALS && h.action !== "finalize");
  for (const [action, gate] of Object.entries(APPROVALS)) {
    if (gate.from !== run.status || !may(gate.permission)) continue;
    const approvedOther = round.some((h) => h.actor_user_id === user.id && h.action !== action);
    if (run.created_by === user.id) {
      note = "Four-eyes: you started this run, so someone else approves it.";
    } else if (separation && action === "finalize" && approvedAny) {
      note = "Separation of duties: you approved this run, so another user finalizes it.";
    } else if (separation && action !== "finalize" && approvedOther) {
      note = "Four-eyes: you already approved a stage of this run.";
    } else {
      buttons.push({ action, label: gate.label, needsComment: false });
    }
  }
  if (REJECT_GATES[run.status] && may(REJECT_GATES[run.status])) {
    buttons.push({ action: "reject", label: "Reject", needsComment: true });
  }
  if (!buttons.length && !note) {
    note = `Waiting for ${WAITING_FOR[run.status]}; you are signed in as ${user.role}.`;
  }
  return { buttons, note };
}

/** The approve/finalize request of a button: [path, body]. */
export function decisionRequest(runId, action, comment) {
  const body = comment ? { comment } : {};
  if (action === "finalize") return [`/runs/${runId}/finalize`, body];
  return [`/runs/${runId}/approve`, { action, ...body }];
}

/** Which of the pane's own controls `user` may use: syncing and locking the plan, and
 * uploading data to start a run (a finance user can approve but not upload). */
export function controlsFor(user) {
  const may = (permission) => (user?.permissions || []).includes(permission);
  return { sync: may("plans.write"), lock: may("plans.lock"),
    data: may("uploads.write") && may("runs.create") };
}

/** Which downloads `user` may ask for on `run` (once it has computed). A manager gets their
 * teams' statements only (the server's one access rule), so for them the zip is "my team's
 * statements", offered once the run is finalized; everyone else may zip all statements. */
export function downloadsFor(user, run) {
  const computed = Boolean(run) && !RUNNING.has(run.status) && run.status !== "failed";
  const may = (permission) => (user?.permissions || []).includes(permission);
  const manager = user?.role === "manager";
  const statements = computed && may("reports.read");
  return { workbook: computed && may("runs.workbook"),
    statements: statements && !manager, statement: statements,
    myTeam: statements && manager && run.status === "finalized" };
}

/** Path and file name of the run's audit workbook. */
export function workbookDownload(runId) {
  return { path: `/runs/${runId}/workbook`, filename: `run-${runId}-audit.xlsx` };
}

/** The request for one employee's statement (POST /reports/individual-statement). */
export function statementRequest(runId, employeeRef, format = "pdf") {
  const ref = String(employeeRef || "").trim();
  if (!ref) throw new Error("Type an employee reference first");
  const safe = ref.replace(/[^A-Za-z0-9._-]/g, "_");
  return { path: "/reports/individual-statement",
    body: { run_id: runId, employee_ref: ref, format }, filename: `statement-${safe}.${format}` };
}

/** The bulk statements job request and where its zip is fetched once done; `mine`: a
 * manager's own teams (the server picks them: the job holds exactly their employees). */
export function statementsJob(runId, format = "pdf", mine = false) {
  return { path: `/runs/${runId}/statements`, body: { format },
    download: (jobId) => `/reports/jobs/${jobId}/download`,
    filename: mine ? `my-team-statements-${runId}.zip` : `statements-${runId}.zip` };
}
