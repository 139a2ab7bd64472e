// Headless Chromium drives the real task pane's OIDC sign-in: the pane (served by a live
// Paysheet server) offers "Sign in with <provider>", the Office dialog opens as a real browser
// window on the server's login route, the user signs in on the real oidc-provider's own pages
// in it, the server's callback sends it to addin/oidc-callback.html, which hands the token to
// the pane through messageParent. Then a refused account (the reason shows in the pane) and
// the sign-out, which opens the provider's logout page in a dialog.
//
// Office stand-in: displayDialogAsync opens a named window; messageParent in that window
// posts on a BroadcastChannel (same origin as the pane), which the pane's dialog object turns
// into DialogMessageReceived. Run by tests/e2e/test_addin_oidc_browser.py with BASE_URL,
// TENANT, ISSUER, ACCOUNTS (JSON: signed_in, refused → {login, email}), ARTIFACTS, CHROMIUM.
// Exits non-zero (with the reason) when any expectation fails.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { chromium } from "playwright-core";

const here = new URL(".", import.meta.url);
const read = (path) => readFileSync(new URL(path, here), "utf8");
const layout = JSON.parse(read("../../../templates/plan_layout.json"));
const plan = JSON.parse(read("../../../samples/plans/fund_bonus.json"));
const { BASE_URL, TENANT, ISSUER, ACCOUNTS, ARTIFACTS, CHROMIUM } = process.env;
const accounts = JSON.parse(ACCOUNTS);
const DIALOG = "paysheet-office-dialog";

const OFFICE_STAND_IN = `
(() => {
  const DIALOG = ${JSON.stringify(DIALOG)};
  const inDialog = window.name === DIALOG;
  window.Office = {
    AsyncResultStatus: { Succeeded: "succeeded", Failed: "failed" },
    EventType: { DialogMessageReceived: "dialogMessageReceived",
      DialogEventReceived: "dialogEventReceived" },
    onReady(callback) {
      if (inDialog) callback({ host: "Excel" });
      else window.__officeReady = callback;
    },
    context: { ui: {
      displayDialogAsync(url, options, callback) {
        window.__dialogs = [...(window.__dialogs || []), url];
        const opened = window.open(url, DIALOG);
        const channel = new BroadcastChannel(DIALOG);
        const handlers = {};
        const dialog = {
          addEventHandler(type, handler) { handlers[type] = handler; },
          close() { channel.close(); opened?.close(); },
        };
        channel.onmessage = (event) =>
          handlers.dialogMessageReceived?.({ message: event.data });
        callback?.({ status: opened ? "succeeded" : "failed", value: dialog,
          error: opened ? undefined : { message: "window.open refused" } });
      },
      messageParent(message) {
        const channel = new BroadcastChannel(DIALOG);
        channel.postMessage(message);
        channel.close();
      },
    } },
  };
})();`;

/** Sign in as `login` on the provider's own pages in the dialog window (login, then the
 * consent page when the provider shows one); the dialog then leaves for our callback. */
async function atProvider(dialog, login) {
  await dialog.waitForURL((url) => url.href.startsWith(ISSUER));
  await dialog.waitForSelector("input[name=login]");
  const loginPage = dialog.url();
  await dialog.fill("input[name=login]", login);
  await dialog.fill("input[name=password]", "any");
  await dialog.click("button[type=submit]");
  try {
    await dialog.waitForURL((url) => url.href !== loginPage);
    if (await dialog.$("input[name=prompt][value=consent]")) {
      await dialog.click("button[type=submit]"); // "Continue"
    }
  } catch (error) {
    if (!dialog.isClosed()) throw error; // closed: the token already reached the pane
  }
}

async function openPane(context) {
  const page = await context.newPage();
  const failures = [];
  page.on("pageerror", (error) => failures.push(error.message));
  await page.route(`${BASE_URL}/stand-in/fake-excel.js`, (route) =>
    route.fulfill({ contentType: "text/javascript", body: read("../support/fake-excel.js") }));
  await page.goto(`${BASE_URL}/addin/taskpane.html?tenant=${TENANT}`);
  await page.waitForFunction(() => typeof window.__officeReady === "function");
  await page.evaluate(async ([planLayout, document]) => {
    const standIn = await import("/stand-in/fake-excel.js");
    window.__workbook = standIn.planWorkbook(planLayout, document);
    window.Excel = standIn.fakeExcel(window.__workbook);
    window.__officeReady({ host: "Excel" });
  }, [layout, plan]);
  return { page, failures };
}

async function clickProviderButton(page) {
  await page.waitForSelector("#signin-oidc");
  assert.equal((await page.textContent("#signin-oidc")).trim(), "Sign in with Fund SSO");
  const [dialog] = await Promise.all([page.waitForEvent("popup"), page.click("#signin-oidc")]);
  assert.ok(dialog.url().startsWith(`${BASE_URL}/api/v1/auth/oidc/${TENANT}/login`) ||
    dialog.url().startsWith(ISSUER), dialog.url());
  return dialog;
}

/** A fresh browser profile (no provider session cookie) with the Office stand-in. */
async function freshContext(browser) {
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  await context.route("https://appsforoffice.microsoft.com/**", (route) =>
    route.fulfill({ contentType: "text/javascript", body: OFFICE_STAND_IN }));
  return context;
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
try {
  // Refused: the provider signs bob in, Paysheet refuses him; the pane says why.
  const refused = await openPane(await freshContext(browser));
  const refusedDialog = await clickProviderButton(refused.page);
  await atProvider(refusedDialog, accounts.refused.login);
  await refused.page.waitForSelector("#log li.error");
  assert.match(await refused.page.textContent("#log li.error"),
    /Sign-in refused: none of your groups \(all-staff\) maps to a Paysheet role/);
  assert.ok(await refused.page.isVisible("#signin-box"));
  assert.ok(await refused.page.isHidden("#who"));
  assert.ok(refusedDialog.isClosed(), "the dialog closes after handing over the refusal");
  assert.deepEqual(refused.failures, []);

  // Signed in: alice, a manager of T01 and T02 at the provider.
  const { page, failures } = await openPane(await freshContext(browser));
  const dialog = await clickProviderButton(page);
  await atProvider(dialog, accounts.signed_in.login);
  await page.waitForFunction((email) =>
    document.getElementById("who-text").textContent.startsWith(email),
  accounts.signed_in.email);
  assert.equal(await page.textContent("#who-text"), `${accounts.signed_in.email} (manager)`);
  assert.ok(await page.isHidden("#signin-box"));
  assert.ok(dialog.isClosed(), "the dialog closes once the token reached the pane");
  await page.screenshot({ path: join(ARTIFACTS, "addin-oidc-signed-in.png") });

  // Sign-out: Paysheet revokes the token, then the provider's logout page opens in a dialog.
  const [logout] = await Promise.all([page.waitForEvent("popup"), page.click("#signout")]);
  await page.waitForSelector("#signin-box:not([hidden])");
  await logout.waitForLoadState();
  assert.ok(logout.url().startsWith(`${ISSUER}/session/end`), logout.url());
  assert.deepEqual(failures, []);
  console.log("oidc browser flow passed");
} finally {
  await browser.close();
}
