// Headless Chromium drives the real task pane (served by a live Paysheet server) with the
// in-memory Office.js stand-in: sign in → sync → a step error lands in the sheet (clicking it
// selects its cell) → fix → sync → run the test vectors → lock (with confirmation) → upload
// the active sheet → confirm the mapping → start a run → results sheet → one employee's tape
// (by selecting their row) → approvals by four other users, each signing in (manager, a
// second hr, finance; the starter refused by four-eyes), the history naming them → finalize
// as admin (with confirmation) → download the audit workbook and statements. Run by
// tests/e2e/test_addin_browser.py, which starts the server (with a run worker) and passes
// BASE_URL, USERS (JSON: hr, manager, hr2, finance, admin → {email, password}), DATA_CSV,
// ARTIFACTS and CHROMIUM.
// Exits non-zero (with the reason) when any expectation fails.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { chromium } from "playwright-core";

const here = new URL(".", import.meta.url);
const read = (path) => readFileSync(new URL(path, here), "utf8");
const layout = JSON.parse(read("../../../templates/plan_layout.json"));
const plan = JSON.parse(read("../../../samples/plans/fund_bonus.json"));
const { BASE_URL, USERS, DATA_CSV, ARTIFACTS, CHROMIUM } = process.env;
const users = JSON.parse(USERS);
// The employees file as an author would have it in a sheet: numbers as numbers.
const dataRows = readFileSync(DATA_CSV, "utf8").trim().split("\n")
  .map((line, r) => line.split(",").map((v) => (r > 0 && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v)));

// The sample plan, with a typo an author might make in step 20's expression.
plan.name = `Browser plan ${Date.now()}`;
plan.steps[1] = { ...plan.steps[1], expr: "round2(base_salary * target_pc)" };

const OFFICE_STAND_IN = `window.Office = { onReady(callback) { window.__officeReady = callback; } };`;

async function renderSheet(page, name, columns, lastRow) {
  // Show the in-memory sheet beside the pane, so the screenshot shows what Excel would.
  await page.evaluate(([sheetName, letters, last]) => {
    const sheet = window.__workbook.sheet(sheetName);
    let box = document.getElementById("sheet-view");
    if (!box) {
      box = document.createElement("div");
      box.id = "sheet-view";
      box.style.cssText = "position:absolute;left:340px;top:0;font:11px monospace;";
      document.body.style.width = "320px";
      document.body.after(box);
    }
    const rows = [];
    for (let r = 1; r <= last; r += 1) {
      const cells = letters.map((c) => {
        const colour = sheet.fills.get(`${c}${r}`) || (r === 1 ? "#1F4E78" : "#fff");
        const text = String(sheet.get(`${c}${r}`)).slice(0, c === "C" ? 60 : 40);
        const fg = r === 1 ? "#fff" : "#000";
        return `<td style="border:1px solid #bbb;padding:2px;background:${colour};color:${fg}">${text}</td>`;
      });
      rows.push(`<tr><th>${r}</th>${cells.join("")}</tr>`);
    }
    box.innerHTML = `<b>${sheetName}</b><table style="border-collapse:collapse">${rows.join("")}</table>`;
  }, [name, columns, lastRow]);
}

const cell = (page, sheet, address) =>
  page.evaluate(([s, a]) => window.__workbook.sheet(s).get(a), [sheet, address]);

async function signIn(page, user) {
  await page.fill("#email", user.email);
  await page.fill("#password", user.password);
  await page.click("#signin");
  await page.waitForFunction((email) =>
    document.getElementById("who-text").textContent.startsWith(email), user.email);
}

/** Sign out; resolves to how many messages the log held before (all cleared after). */
async function signOut(page) {
  const before = await page.$$eval("#log li", (nodes) => nodes.length);
  await page.click("#signout");
  await page.waitForSelector("#signin-box:not([hidden])");
  // nothing of the last user's session stays on screen
  assert.equal(await page.$$eval("#log li", (nodes) => nodes.length), 0);
  assert.ok(await page.isHidden("#run-view"));
  return before;
}

const text = (page, selector) => page.textContent(selector);
/** A Fluent button's `disabled` (a custom element: Playwright's isDisabled does not see it). */
const disabled = (page, selector) => page.$eval(selector, (node) => node.disabled === true);
/** Wait until the run view has been drawn for `user` (after a sign-in). */
const shown = (page, user) => page.waitForFunction((email) =>
  document.getElementById("run-view").dataset.viewer === email, user.email);
const buttons = (page) => page.$$eval("#approval-buttons fluent-button", (nodes) =>
  nodes.map((node) => node.dataset.action));

/** Sign in as `user`, open the plan's latest run and press the approval `action`. */
async function approveAs(page, user, action, expected) {
  assert.ok(await signOut(page) > 0, "the last user's messages were on screen, then cleared");
  await signIn(page, user);
  await shown(page, user);
  assert.ok((await buttons(page)).includes(action), `${action} offered to ${user.email}`);
  await page.click(`#approval-buttons fluent-button[data-action="${action}"]`);
  await page.waitForFunction((state) =>
    document.getElementById("approval-state").dataset.status === state, expected);
}

async function download(page, selector, name, timeout = 30_000) {
  const [file] = await Promise.all([page.waitForEvent("download", { timeout }),
    page.click(selector)]);
  const path = join(ARTIFACTS, name);
  await file.saveAs(path);
  return { path, suggested: file.suggestedFilename() };
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
let page;
try {
  page = await browser.newPage({ viewport: { width: 1400, height: 700 } });
  const failures = [];
  page.on("pageerror", (error) => failures.push(error.message));
  const sockets = [];
  page.on("websocket", (socket) => sockets.push(socket.url()));
  await page.route("https://appsforoffice.microsoft.com/**", (route) =>
    route.fulfill({ contentType: "text/javascript", body: OFFICE_STAND_IN }));
  await page.route(`${BASE_URL}/stand-in/fake-excel.js`, (route) =>
    route.fulfill({ contentType: "text/javascript", body: read("../support/fake-excel.js") }));
  await page.goto(`${BASE_URL}/addin/taskpane.html`);
  await page.waitForFunction(() => typeof window.__officeReady === "function");
  await page.evaluate(async ([planLayout, document]) => {
    const standIn = await import("/stand-in/fake-excel.js");
    window.__workbook = standIn.planWorkbook(planLayout, document);
    window.Excel = standIn.fakeExcel(window.__workbook);
    const tests = window.__workbook.sheet("Tests");
    const vector = { D: ["fund_ref", "F1"], E: ["level", "analyst"], F: ["team", "T1"],
      G: ["base_salary", "100000"], H: ["performance_score", "4"], I: ["fund_return", "0.1"],
      J: ["fund_pool", "100000"], K: ["expect bonus", "100000"] };
    for (const [column, [title, value]] of Object.entries(vector)) {
      tests.set(`${column}1`, title);
      tests.set(`${column}2`, value);
    }
    tests.set("A2", "analyst alone takes the pool");
    window.__officeReady();
  }, [layout, plan]);

  // a wrong password: the error stands next to the password field, not in the message log
  await page.fill("#email", users.hr.email);
  await page.fill("#password", "not-the-password");
  await page.click("#signin");
  await page.waitForSelector("#password-error:not([hidden])");
  assert.match(await text(page, "#password-error"), /Email or password is not right/);
  assert.equal(await page.getAttribute("#password", "aria-invalid"), "true");
  assert.equal(await page.$$eval("#log li", (nodes) => nodes.length), 0);
  await signIn(page, users.hr);
  assert.ok(await page.isHidden("#password-error"), "typing the password clears the error");

  await page.click("#sync");
  await page.waitForFunction(() => /problem/.test(document.getElementById("plan-state").textContent));
  assert.equal(await cell(page, "Steps", "G3"), "error");
  assert.match(await cell(page, "Steps", "H3"), /did you mean 'target_pct'/);
  assert.equal(await cell(page, "Steps", "G2"), "ok");
  assert.match(await cell(page, "Plan", "B8"), /^[0-9a-f-]{36}$/);
  assert.ok(await disabled(page, "#lock"));
  // clicking a problem selects its cell in the workbook
  const problemCell = await page.getAttribute("#problems li", "data-cell");
  assert.match(problemCell, /^Steps!C3$/);
  await page.click("#problems li");
  await page.waitForFunction((ref) => window.__workbook.selected === ref, problemCell);
  assert.match(await text(page, "#plan-state"), /click one to go to its cell/);
  await renderSheet(page, "Steps", ["A", "B", "C", "D", "G", "H"], 8);
  await page.screenshot({ path: join(ARTIFACTS, "addin-1-step-error.png") });

  await page.evaluate(() => window.__workbook.sheet("Steps")
    .set("C3", "round2(base_salary * target_pct)"));
  await page.click("#sync");
  await page.waitForFunction(() => /^Valid/.test(document.getElementById("plan-state").textContent));
  assert.equal(await cell(page, "Steps", "G3"), "ok");
  assert.equal(await page.evaluate(() => window.__workbook.sheet("Steps").fills.has("C3")), false);

  await page.click("#tests");
  await page.waitForFunction(() => /test\(s\)/.test(document.getElementById("log").textContent));
  assert.equal(await cell(page, "Tests", "B2"), "pass", await cell(page, "Tests", "C2"));

  await page.click("#lock");
  await page.waitForSelector("#confirm-dialog[open]");
  assert.equal(await text(page, "#confirm-title"), "Lock the plan?");
  await page.screenshot({ path: join(ARTIFACTS, "addin-2a-lock-confirm.png") });
  await page.click("#confirm-no");
  await page.waitForSelector("#confirm-dialog", { state: "hidden" });
  assert.equal(await cell(page, "Plan", "B9"), "draft", "cancelled: nothing locked");
  await page.click("#lock");
  await page.waitForSelector("#confirm-dialog[open]");
  await page.click("#confirm-yes");
  await page.waitForFunction(() => /^Locked/.test(document.getElementById("plan-state").textContent));
  assert.equal(await cell(page, "Plan", "B9"), "locked");
  assert.match(await cell(page, "Plan", "B10"), /^[0-9a-f]{64}$/);
  assert.ok(await disabled(page, "#lock"), "a locked plan cannot be locked again");
  await renderSheet(page, "Plan", ["A", "B"], 11);
  await page.screenshot({ path: join(ARTIFACTS, "addin-2-locked.png") });

  // The employees data is the active sheet; the pane sends its used range as CSV.
  await page.evaluate((rows) => {
    const sheet = window.__workbook.addSheet("Employees");
    rows.forEach((cells, r) => cells.forEach((value, c) => {
      sheet.set(`${String.fromCharCode(65 + c)}${r + 1}`, value);
    }));
  }, dataRows);
  await page.click("#upload-sheet");
  await page.waitForSelector("#mapping-box:not([hidden])");
  const suggested = await page.$$eval("#mapping select", (nodes) =>
    Object.fromEntries(nodes.map((node) => [node.name, node.value])));
  assert.equal(suggested.employee_ref, "Employee ID");
  assert.equal(suggested.base_salary, "Base Salary");
  await renderSheet(page, "Employees", ["A", "B", "C", "D", "E", "F", "G", "H"],
    dataRows.length);
  await page.screenshot({ path: join(ARTIFACTS, "addin-3-mapping.png"), fullPage: true });
  await page.click("#confirm-mapping");
  await page.waitForFunction(() => !document.getElementById("start-run").disabled);

  await page.click("#start-run");
  await page.waitForFunction(() => /^Computed/.test(document.getElementById("run-state").textContent)
    && /^Run started \d{4}-\d\d-\d\d \d\d:\d\d UTC$/.test(document.getElementById("run-id").textContent));
  const runId = await page.getAttribute("#run-id", "data-run-id");
  assert.equal(await text(page, "#approval-state"), "Computed: waiting for manager approval");
  assert.match(runId, /^[0-9a-f-]{36}$/);
  assert.ok(sockets.some((url) => url.includes(`/api/v1/runs/${runId}/events?token=`)),
    `progress came over the run's socket: ${sockets}`);
  assert.match(await text(page, "#totals"), new RegExp(`Employees${dataRows.length - 1}`));
  assert.match(await text(page, "#totals"), /Null payouts0/);
  assert.equal(await page.getAttribute("#run-progress", "value"), "100");
  assert.deepEqual(await buttons(page), [], "hr cannot approve a draft run");
  assert.match(await text(page, "#approval-note"), /Waiting for a manager/);
  // the run's results into a Results sheet, then one employee's tape
  await page.click("#write-results");
  await page.waitForFunction(() => /Results sheet: \d+ employee/.test(
    document.getElementById("log").textContent));
  assert.equal(await cell(page, "Results", "A1"), "Employee");
  assert.equal(await cell(page, "Results", "A2"), "E01");
  assert.equal(typeof await cell(page, "Results", "B2"), "number");
  assert.equal(await cell(page, "Results", `A${dataRows.length + 2}`), "Pool step");
  await page.fill("#tape-ref", "E01");
  await page.click("#show-tape");
  await page.waitForSelector("#tape-box:not([hidden]) #tape li");
  assert.match(await text(page, "#tape-title"), /E01/);
  assert.match(await text(page, "#tape"), /bonus = .* → \d/);
  // selecting a cell of E03's row on the Results sheet shows E03's tape (Excel's event)
  await page.evaluate(() => window.__workbook.userSelects("Results", "C4"));
  await page.waitForFunction(() => /E03/.test(document.getElementById("tape-title").textContent));
  assert.equal(await page.inputValue("#tape-ref"), "E03");
  assert.match(await text(page, "#tape"), /bonus = .* → \d/);
  await renderSheet(page, "Results", ["A", "B", "C", "D", "E", "F", "G"], dataRows.length + 4);
  await page.screenshot({ path: join(ARTIFACTS, "addin-4-run-computed.png"), fullPage: true });

  await approveAs(page, users.manager, "manager_approve", "manager_approved");
  assert.equal(await text(page, "#approval-state"),
    "Approved by the manager: waiting for HR approval");
  // a manager: no "all statements" zip; their team's zip only once the run is finalized
  assert.ok(await page.isHidden("#download-statements"));
  assert.ok(await page.isHidden("#download-my-team"));
  assert.ok(await page.isVisible("#statement-box"));
  // Four-eyes: the hr user who started the run holds the hr gate but is not offered it.
  await signOut(page);
  await signIn(page, users.hr);
  await shown(page, users.hr);
  assert.match(await text(page, "#approval-note"), /Four-eyes: you started/);
  assert.deepEqual(await buttons(page), ["reject"]);
  await approveAs(page, users.hr2, "hr_approve", "hr_approved");

  await signOut(page);
  await signIn(page, users.finance);
  await shown(page, users.finance);
  assert.deepEqual(await buttons(page), ["finance_approve", "reject"]);
  assert.ok(await page.isHidden("#sync"), "finance does not edit plans");
  assert.ok(await page.isHidden("#upload-sheet"), "finance does not upload data");
  await page.screenshot({ path: join(ARTIFACTS, "addin-5-finance.png"), fullPage: true });
  await page.click('#approval-buttons fluent-button[data-action="finance_approve"]');
  await page.waitForFunction(() =>
    document.getElementById("approval-state").dataset.status === "finance_approved");
  assert.equal(await text(page, "#approval-state"), "Approved by finance: waiting to be finalized");
  const history = await page.$$eval("#approval-history li", (nodes) =>
    nodes.map((node) => node.textContent));
  const when = "\\d{1,2} [A-Z][a-z]{2} \\d{4} \\d\\d:\\d\\d UTC";
  const names = ["Manager \\(manager\\)", "Second HR \\(hr\\)", "Finance \\(finance\\)"];
  names.forEach((who, index) =>
    assert.match(history[index], new RegExp(`^Approved by ${who}, ${when}$`)));
  assert.equal(history.length, 3);
  await page.screenshot({ path: join(ARTIFACTS, "addin-6-finance-approved.png"), fullPage: true });

  // the fourth user: an admin finalizes (finance approved, so separation of duties says no)
  assert.deepEqual(await buttons(page), ["reject"]);
  assert.match(await text(page, "#approval-note"), /Separation of duties: you approved this run/);
  await signOut(page);
  await signIn(page, users.admin);
  await shown(page, users.admin);
  assert.deepEqual(await buttons(page), ["finalize", "reject"]);
  await page.click('#approval-buttons fluent-button[data-action="finalize"]');
  await page.waitForSelector("#confirm-dialog[open]");
  assert.equal(await text(page, "#confirm-title"), "Finalize the run?");
  await page.screenshot({ path: join(ARTIFACTS, "addin-7-finalize-confirm.png"), fullPage: true });
  await page.click("#confirm-no");
  await page.waitForSelector("#confirm-dialog", { state: "hidden" });
  assert.equal(await page.getAttribute("#approval-state", "data-status"), "finance_approved",
    "cancelled: nothing finalized");
  await page.click('#approval-buttons fluent-button[data-action="finalize"]');
  await page.waitForSelector("#confirm-dialog[open]");
  await page.click("#confirm-yes");
  await page.waitForFunction(() =>
    document.getElementById("approval-state").dataset.status === "finalized");
  assert.equal(await text(page, "#approval-state"), "Finalized");
  assert.deepEqual(await buttons(page), []);
  assert.match((await page.$$eval("#approval-history li", (nodes) => nodes.map((n) => n.textContent)))[3],
    new RegExp(`^Finalized by Admin \\(admin\\), ${when}`));

  const workbook = await download(page, "#download-workbook", "addin-audit.xlsx");
  assert.equal(workbook.suggested, `run-${runId}-audit.xlsx`);
  await page.fill("#statement-ref", "E01");
  const statement = await download(page, "#download-statement", "addin-statement-E01.pdf");
  assert.equal(readFileSync(statement.path).subarray(0, 4).toString(), "%PDF");
  // Every statement is rendered by a bulk job on the worker: slower on a busy machine.
  const started = Date.now();
  const zip = await download(page, "#download-statements", "addin-statements.zip", 300_000);
  console.log(`statements zip in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.equal(zip.suggested, `statements-${runId}.zip`);
  assert.equal(readFileSync(zip.path).subarray(0, 2).toString(), "PK");
  assert.doesNotMatch(await text(page, "#run-state"), /Statements/, "the run's state again");
  await page.screenshot({ path: join(ARTIFACTS, "addin-8-finalized.png"), fullPage: true });
  assert.deepEqual(failures, []);

  // Opened outside Excel (no Office.js host): a clear message and the help page, no dead form.
  const outside = await browser.newPage({ viewport: { width: 360, height: 600 } });
  await outside.route("https://appsforoffice.microsoft.com/**", (route) => route.abort());
  await outside.goto(`${BASE_URL}/addin/taskpane.html`);
  await outside.waitForSelector("#outside:not([hidden])");
  assert.ok(await outside.isHidden("#signin-box"));
  assert.match(await outside.textContent("#outside"), /Home → Add-ins → Paysheet/);
  await outside.screenshot({ path: join(ARTIFACTS, "addin-0-outside-excel.png") });
  const help = await outside.request.get(`${BASE_URL}/addin/help.html`);
  assert.equal(help.status(), 200);
  assert.match(await help.text(), /Paysheet in Excel: help/);
  await outside.close();
  console.log(`browser flow passed; plan hash ${await cell(page, "Plan", "B10")}; run ${runId}`);
} catch (error) {
  // The pane's log says what the pane saw (server refusals, failed jobs).
  const log = await page?.textContent("#log").catch(() => "");
  console.error(`pane log (newest first):\n${log}`);
  await page?.screenshot({ path: join(ARTIFACTS, "addin-failure.png"), fullPage: true });
  throw error;
} finally {
  await browser.close();
}
