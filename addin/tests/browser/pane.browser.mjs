// Headless Chromium drives the real task pane (served by a live Paysheet server) with the
// in-memory Office.js stand-in: sign in → sync → a step error lands in the sheet → fix →
// sync → run the test vectors → lock. Run by tests/e2e/test_addin_browser.py, which starts
// the server and passes BASE_URL, EMAIL, PASSWORD, ARTIFACTS and CHROMIUM.
// Exits non-zero (with the reason) when any expectation fails.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { chromium } from "playwright-core";

const here = new URL(".", import.meta.url);
const read = (path) => readFileSync(new URL(path, here), "utf8");
const layout = JSON.parse(read("../../../templates/plan_layout.json"));
const plan = JSON.parse(read("../../../samples/plans/fund_bonus.json"));
const { BASE_URL, EMAIL, PASSWORD, ARTIFACTS, CHROMIUM } = process.env;

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

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 700 } });
  const failures = [];
  page.on("pageerror", (error) => failures.push(error.message));
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

  await page.fill("#email", EMAIL);
  await page.fill("#password", PASSWORD);
  await page.click("#signin");
  await page.waitForSelector("#plan-box:not([hidden])");

  await page.click("#sync");
  await page.waitForFunction(() => /problem/.test(document.getElementById("plan-state").textContent));
  assert.equal(await cell(page, "Steps", "G3"), "error");
  assert.match(await cell(page, "Steps", "H3"), /did you mean 'target_pct'/);
  assert.equal(await cell(page, "Steps", "G2"), "ok");
  assert.match(await cell(page, "Plan", "B8"), /^[0-9a-f-]{36}$/);
  assert.ok(await page.isDisabled("#lock"));
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
  await page.waitForFunction(() => /^Locked/.test(document.getElementById("plan-state").textContent));
  assert.equal(await cell(page, "Plan", "B9"), "locked");
  assert.match(await cell(page, "Plan", "B10"), /^[0-9a-f]{64}$/);
  assert.ok(await page.isDisabled("#lock"), "a locked plan cannot be locked again");
  await renderSheet(page, "Plan", ["A", "B"], 11);
  await page.screenshot({ path: join(ARTIFACTS, "addin-2-locked.png") });
  assert.deepEqual(failures, []);
  console.log(`browser flow passed; plan hash ${await cell(page, "Plan", "B10")}`);
} finally {
  await browser.close();
}
