import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError } from "../src/api.js";
import {
  adoptSession, findProvider, oidcSignOut, parseCallbackFragment, relayCallback,
  signInWithDialog, tenantHint,
} from "../src/oidc.js";

/** An Office stand-in recording dialogs; `answer(dialog)` plays the dialog's side. */
function fakeOffice(answer, { opens = true } = {}) {
  const opened = [];
  const office = {
    AsyncResultStatus: { Succeeded: "succeeded", Failed: "failed" },
    EventType: { DialogMessageReceived: "message", DialogEventReceived: "event" },
    context: { ui: {
      displayDialogAsync(url, options, callback) {
        const handlers = {};
        const dialog = {
          closed: false,
          addEventHandler: (type, handler) => { handlers[type] = handler; },
          close() { this.closed = true; },
        };
        opened.push({ url, options, dialog });
        if (!callback) return;
        if (!opens) {
          callback({ status: "failed", error: { message: "blocked by the host" } });
          return;
        }
        callback({ status: "succeeded", value: dialog });
        answer?.(handlers, dialog);
      },
    } },
  };
  return { office, opened };
}

const SESSION = { access_token: "tok-1", tenant_id: "t-1", user_id: "u-1",
  token_type: "bearer", expires_at: "2026-12-08T08:00:00Z" };

test("the dialog opens the login URL for the add-in and resolves to the token", async () => {
  const { office, opened } = fakeOffice((handlers) => handlers.message({
    message: JSON.stringify(SESSION) }));
  const session = await signInWithDialog(office, "https://ps.example/api/v1/auth/oidc/t-1/login");
  assert.deepEqual(session, SESSION);
  assert.equal(opened[0].url, "https://ps.example/api/v1/auth/oidc/t-1/login?return_to=addin");
  assert.equal(opened[0].dialog.closed, true);
});

test("a refusal, a closed window and a blocked dialog each reject with the reason", async () => {
  const refused = fakeOffice((h) => h.message({ message: JSON.stringify({
    error: "ID token refused: it expired" }) }));
  await assert.rejects(signInWithDialog(refused.office, "https://x/login"),
    /Sign-in refused: ID token refused: it expired/);
  const closed = fakeOffice((h) => h.event({ error: 12006 }));
  await assert.rejects(signInWithDialog(closed.office, "https://x/login"), /closed before/);
  const blocked = fakeOffice(null, { opens: false });
  await assert.rejects(signInWithDialog(blocked.office, "https://x/login"),
    /did not open: blocked by the host/);
  const garbage = fakeOffice((h) => h.message({ message: "<html>" }));
  await assert.rejects(signInWithDialog(garbage.office, "https://x/login"), /unreadable/);
});

test("the callback page relays its fragment to the pane and removes it from the URL", () => {
  const sent = [];
  const replaced = [];
  const office = { context: { ui: { messageParent: (m) => sent.push(m) } } };
  const location = { hash: "#access_token=tok-1&tenant_id=t-1", pathname: "/addin/oidc-callback.html" };
  const history = { replaceState: (...args) => replaced.push(args) };
  const result = relayCallback(office, location, history);
  assert.deepEqual(result, { access_token: "tok-1", tenant_id: "t-1" });
  assert.deepEqual(JSON.parse(sent[0]), result);
  assert.deepEqual(replaced, [[null, "", "/addin/oidc-callback.html"]]);
  assert.deepEqual(parseCallbackFragment("#error=none+of+your+groups"),
    { error: "none of your groups" });
});

test("the provider button is offered only when the tenant has one", async () => {
  const asked = [];
  const api = { request: async (method, path) => {
    asked.push(path);
    if (path.includes("t-none")) throw new ApiError(404, { detail: "identity provider not found" });
    if (path.includes("t-down")) throw new ApiError(503, { detail: "database unreachable" });
    return { display_name: "Fund SSO", login_url: "https://ps/login" };
  } };
  assert.equal(await findProvider(api, null), null);
  assert.equal(await findProvider(api, "t-none"), null);
  assert.deepEqual(await findProvider(api, "t-1"),
    { display_name: "Fund SSO", login_url: "https://ps/login" });
  await assert.rejects(findProvider(api, "t-down"), /database unreachable/);
  assert.deepEqual(asked, ["/auth/oidc/t-none/provider", "/auth/oidc/t-1/provider",
    "/auth/oidc/t-down/provider"]);
  const store = new Map([["paysheet.tenant", "t-stored"]]);
  const storage = { getItem: (k) => store.get(k) ?? null };
  assert.equal(tenantHint({ search: "?tenant=t-url" }, storage), "t-url");
  assert.equal(tenantHint({ search: "" }, storage), "t-stored");
});

test("an adopted session signs out at Paysheet and then at the provider", async () => {
  const calls = [];
  const api = {
    token: null,
    layout: async () => ({ sheets: {} }),
    me: async () => ({ user_id: "u-1", role: "manager", email: "alice@fund.example",
      permissions: ["runs.read"] }),
    request: async (method, path) => {
      calls.push([method, path, api.token]);
      return { end_session_url: "https://idp/session/end?id_token_hint=x" };
    },
  };
  const pane = { api, user: null, signOut: undefined };
  Object.setPrototypeOf(pane, { signOut: async () => calls.push(["plain sign-out"]) });
  const { office, opened } = fakeOffice(null);
  globalThis.localStorage = { setItem() {}, getItem: () => null };
  const user = await adoptSession(pane, SESSION, office);
  assert.equal(user.role, "manager");
  assert.equal(api.token, "tok-1");
  await pane.signOut();
  assert.deepEqual(calls, [["POST", "/auth/oidc/logout", "tok-1"]]);
  assert.equal(api.token, null);
  assert.equal(opened[0].url, "https://idp/session/end?id_token_hint=x");
  await pane.signOut(); // the next sign-out is the plain one again
  assert.deepEqual(calls.at(-1), ["plain sign-out"]);
  await oidcSignOut({ api: { request: async () => ({ end_session_url: null }) } }, office);
  assert.equal(opened.length, 1, "no provider page when it offers no logout");
});
