// Wires the task pane page (taskpane.html) to the Pane actions once Office is ready. The
// controls are Fluent UI web components (Microsoft's own, as Office uses), bundled with the
// add-in in vendor/ (no CDN at run time).

import { fluentButton, provideFluentDesignSystem } from "../vendor/fluent-web-components.min.js";
import { ApiError, PaysheetApi } from "./api.js";
import { confirmAction } from "./confirm.js";
import { offerProviderButton } from "./oidc.js";
import { Pane } from "./pane.js";
import { RunPanel } from "./runpanel.js";
import { controlsFor } from "./runs.js";

provideFluentDesignSystem().register(fluentButton());

const $ = (id) => document.getElementById(id);

function say(text, kind = "info") {
  const line = document.createElement("li");
  line.textContent = text;
  line.className = kind;
  $("log").prepend(line);
}

/** The problems list; clicking (or Enter on) a problem selects its cell in the workbook. */
function showProblems(problems, select = null) {
  const list = $("problems");
  list.replaceChildren();
  for (const problem of problems) {
    const item = document.createElement("li");
    item.textContent = `${problem.cell}: ${problem.message}`;
    item.dataset.cell = problem.cell;
    if (select) {
      item.tabIndex = 0;
      item.setAttribute("role", "button");
      item.title = `Select ${problem.cell}`;
      const go = () => select(problem.cell).catch((error) => say(describe(error), "error"));
      item.addEventListener("click", go);
      item.addEventListener("keydown", (event) => { if (event.key === "Enter") go(); });
    }
    list.append(item);
  }
  $("problems-box").hidden = problems.length === 0;
}

/** Sign-out leaves nothing of the last user's session on screen: messages, problems, run. */
function clearSession() {
  $("log").replaceChildren();
  showProblems([]);
  $("plan-state").textContent = "";
  for (const id of ["plan-box", "run-box", "who", "run-view", "mapping-box"]) $(id).hidden = true;
}

/** Opened in a browser, not in Excel: say so and how to get there, instead of a dead form. */
export function outsideExcel() {
  $("signin-box").hidden = true;
  $("outside").hidden = false;
}

function describe(error) {
  if (error instanceof ApiError) {
    const details = error.errors.map((e) => `${(e.loc || []).join(".")}: ${e.msg}`);
    return [error.message, ...details].join("\n");
  }
  return error?.message || String(error);
}

/** An error that belongs to one input of the pane: shown next to it, not only in the log. */
export class FieldError extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

/** Show `message` under the input `id` (aria-invalid, cleared when the user edits it). */
function fieldError(id, message) {
  const input = $(id);
  if (!input) return false;
  let note = $(`${id}-error`);
  if (!note) {
    note = document.createElement("p");
    note.id = `${id}-error`;
    note.className = "field-error";
    note.setAttribute("role", "alert");
    (input.closest("label") || input).after(note);
    input.addEventListener("input", () => clearFieldError(id));
  }
  note.textContent = message;
  note.hidden = false;
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", note.id);
  return true;
}

function clearFieldError(id) {
  const note = $(`${id}-error`);
  if (note) note.hidden = true;
  $(id)?.removeAttribute("aria-invalid");
}

/** Run `work` with `button` disabled; it stays disabled if `work` returns false. */
async function guarded(button, work) {
  button.disabled = true;
  let enable = true;
  try {
    enable = (await work()) !== false;
  } catch (error) {
    if (!(error instanceof FieldError && fieldError(error.field, error.message))) {
      say(describe(error), "error");
    }
  } finally {
    button.disabled = !enable;
  }
}

export function start(excel) {
  const api = new PaysheetApi($("server").value || window.location.origin);
  const pane = new Pane({ api, excel });
  let planId = null;
  const runs = new RunPanel({
    pane, guarded, say, FieldError,
    planId: async () => {
      planId = planId || await pane.planIdFromSheet();
      if (!planId) throw new Error("Sync the plan first: the workbook has no plan id yet");
      return planId;
    },
  });

  // "Sign in with <provider>" when the tenant has an identity provider (src/oidc.js); then
  // the pane looks as after the password sign-in below.
  offerProviderButton({ api, pane, office: globalThis.Office, box: $("signin-box"),
    onError: (error) => say(describe(error), "error"),
    onSignedIn: (user) => {
      for (const id of ["plan-box", "run-box", "who"]) $(id).hidden = false;
      $("signin-box").hidden = true;
      $("who-text").textContent = `${user.email} (${user.role})`;
      say(`Signed in as ${user.email} (${user.role})`);
      const controls = controlsFor(user);
      $("sync").hidden = !controls.sync;
      $("lock").hidden = !controls.lock;
      return runs.refresh();
    } }).catch((error) => say(describe(error), "error"));

  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded($("signin"), async () => {
      api.baseUrl = ($("server").value || window.location.origin).replace(/\/$/, "");
      clearFieldError("password");
      try {
        await pane.signIn($("email").value, $("password").value);
      } catch (error) {
        if (error instanceof ApiError && [400, 401, 403].includes(error.status)) {
          throw new FieldError("password", "Email or password is not right. Try again.");
        }
        throw error;
      }
      $("signin-box").hidden = true;
      $("plan-box").hidden = false;
      $("run-box").hidden = false;
      $("who").hidden = false;
      $("who-text").textContent = `${pane.user.email} (${pane.user.role})`;
      say(`Signed in as ${pane.user.email} (${pane.user.role})`);
      const controls = controlsFor(pane.user);
      $("sync").hidden = !controls.sync;
      $("lock").hidden = !controls.lock;
      await runs.refresh();
    });
  });

  $("signout").addEventListener("click", () => guarded($("signout"), async () => {
    await pane.signOut();
    clearSession();
    $("signin-box").hidden = false;
    $("password").value = "";
  }));

  $("sync").addEventListener("click", () => guarded($("sync"), async () => {
    const result = await pane.sync();
    planId = result.planId;
    showProblems(result.problems, (cell) => pane.selectCell(cell));
    $("lock").disabled = !result.valid || result.status === "locked";
    $("plan-state").textContent = result.valid
      ? "Valid: run the tests, then lock the plan to use it"
      : `${result.problems.length} problem(s): click one to go to its cell`;
    $("plan-state").title = result.planHash ? `Plan hash ${result.planHash}` : "";
    say(result.valid ? "Plan synced: valid" : "Plan synced: problems found",
      result.valid ? "ok" : "error");
  }));

  $("tests").addEventListener("click", () => guarded($("tests"), async () => {
    if (!planId) throw new Error("Sync the plan first");
    const results = await pane.runTests(planId);
    const failed = results.filter((r) => !r.passed).length;
    say(`${results.length} test(s), ${failed} failed`, failed ? "error" : "ok");
  }));

  $("lock").addEventListener("click", () => guarded($("lock"), async () => {
    if (!planId) throw new Error("Sync the plan first");
    if (!await confirmAction("lock")) return true;
    const plan = await pane.lock(planId);
    $("plan-state").textContent = `Locked: version ${plan.version}, ready for runs`;
    $("plan-state").title = `Plan hash ${plan.plan_hash}`;
    say(`Plan locked (version ${plan.version})`, "ok");
    return false; // a locked plan cannot be locked again
  }));
}

// Office.onReady answers {host: null} when the page is opened outside an Office host.
if (globalThis.Office?.onReady) {
  globalThis.Office.onReady((info) => {
    if (info?.host === null || !globalThis.Excel) outsideExcel();
    else start(globalThis.Excel);
  });
} else if (typeof document !== "undefined") {
  outsideExcel();
}
