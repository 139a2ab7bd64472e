// Wires the task pane page (taskpane.html) to the Pane actions once Office is ready.

import { ApiError, PaysheetApi } from "./api.js";
import { offerProviderButton } from "./oidc.js";
import { Pane } from "./pane.js";
import { RunPanel } from "./runpanel.js";
import { controlsFor } from "./runs.js";

const $ = (id) => document.getElementById(id);

function say(text, kind = "info") {
  const line = document.createElement("li");
  line.textContent = text;
  line.className = kind;
  $("log").prepend(line);
}

function showProblems(problems) {
  const list = $("problems");
  list.replaceChildren();
  for (const problem of problems) {
    const item = document.createElement("li");
    item.textContent = `${problem.cell}: ${problem.message}`;
    item.dataset.cell = problem.cell;
    list.append(item);
  }
  $("problems-box").hidden = problems.length === 0;
}

function describe(error) {
  if (error instanceof ApiError) {
    const details = error.errors.map((e) => `${(e.loc || []).join(".")}: ${e.msg}`);
    return [error.message, ...details].join("\n");
  }
  return error?.message || String(error);
}

/** Run `work` with `button` disabled; it stays disabled if `work` returns false. */
async function guarded(button, work) {
  button.disabled = true;
  let enable = true;
  try {
    enable = (await work()) !== false;
  } catch (error) {
    say(describe(error), "error");
  } finally {
    button.disabled = !enable;
  }
}

export function start(excel) {
  const api = new PaysheetApi($("server").value || window.location.origin);
  const pane = new Pane({ api, excel });
  let planId = null;
  const runs = new RunPanel({
    pane, guarded, say,
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
      await pane.signIn($("email").value, $("password").value);
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
    for (const id of ["plan-box", "run-box", "who"]) $(id).hidden = true;
    $("signin-box").hidden = false;
    $("password").value = "";
    say("Signed out");
  }));

  $("sync").addEventListener("click", () => guarded($("sync"), async () => {
    const result = await pane.sync();
    planId = result.planId;
    showProblems(result.problems);
    $("lock").disabled = !result.valid || result.status === "locked";
    $("plan-state").textContent = result.valid
      ? `Valid. Hash if locked: ${result.planHash}`
      : `${result.problems.length} problem(s): see the highlighted cells`;
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
    const plan = await pane.lock(planId);
    $("plan-state").textContent = `Locked. Plan hash ${plan.plan_hash}`;
    say(`Locked: ${plan.plan_hash}`, "ok");
    return false; // a locked plan cannot be locked again
  }));
}

if (globalThis.Office?.onReady) {
  globalThis.Office.onReady(() => start(globalThis.Excel));
}
