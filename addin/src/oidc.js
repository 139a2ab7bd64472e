// Sign in with the tenant's identity provider (OIDC) from the task pane.
//
// The pane cannot show the provider's pages itself (they refuse to be framed, and Office
// blocks cross-domain navigation), so it opens the server's /auth/oidc/{tenant}/login in an
// Office dialog (Office.context.ui.displayDialogAsync). The server runs the authorization
// code + PKCE flow and sends the dialog to oidc-callback.html with the bearer token in the
// URL fragment; that page hands it to the pane with messageParent() and the dialog closes.

const TENANT_KEY = "paysheet.tenant";

/** The tenant whose provider to offer: `?tenant=` of the pane's URL, else the last one used. */
export function tenantHint(location = globalThis.location, storage = globalThis.localStorage) {
  const fromUrl = new URLSearchParams(location?.search || "").get("tenant");
  return fromUrl || storage?.getItem(TENANT_KEY) || null;
}

export function rememberTenant(tenantId, storage = globalThis.localStorage) {
  if (tenantId) storage?.setItem(TENANT_KEY, tenantId);
}

/** {display_name, login_url} of the tenant's provider, or null when it has none (404). */
export async function findProvider(api, tenantId) {
  if (!tenantId) return null;
  try {
    return await api.request("GET", `/auth/oidc/${encodeURIComponent(tenantId)}/provider`);
  } catch (error) {
    if (error?.status === 404 || error?.status === 422) return null;
    throw error;
  }
}

/** The fields of the callback page's fragment (`#access_token=…` or `#error=…`). */
export function parseCallbackFragment(hash) {
  return Object.fromEntries(new URLSearchParams(String(hash || "").replace(/^#/, "")));
}

/** Open the provider's sign-in in an Office dialog; resolves to the token fields. */
export function signInWithDialog(office, loginUrl) {
  const url = `${loginUrl}${loginUrl.includes("?") ? "&" : "?"}return_to=addin`;
  return new Promise((resolve, reject) => {
    office.context.ui.displayDialogAsync(url, { height: 60, width: 30, promptBeforeOpen: false },
      (opened) => {
        if (opened.status !== office.AsyncResultStatus.Succeeded) {
          reject(new Error(`the sign-in window did not open: ${opened.error?.message}`));
          return;
        }
        const dialog = opened.value;
        dialog.addEventHandler(office.EventType.DialogMessageReceived, (arg) => {
          dialog.close();
          let result;
          try {
            result = JSON.parse(arg.message);
          } catch {
            reject(new Error("the sign-in window sent an unreadable answer"));
            return;
          }
          if (result.error || !result.access_token) {
            reject(new Error(`Sign-in refused: ${result.error || "no token"}`));
          } else {
            resolve(result);
          }
        });
        dialog.addEventHandler(office.EventType.DialogEventReceived, () => {
          reject(new Error("the sign-in window was closed before signing in"));
        });
      });
  });
}

/** Adopt a token from the dialog into the pane, as the password sign-in does. For this
 * session the pane's signOut also signs out at the provider (then it is the plain one again),
 * so the pane's existing "Sign out" button needs no change. */
export async function adoptSession(pane, session, office = globalThis.Office) {
  pane.api.token = session.access_token;
  pane.api.tenantId = session.tenant_id;
  pane.signOut = () => oidcSignOut(pane, office);
  pane.layout = await pane.api.layout();
  const me = await pane.api.me();
  pane.user = { id: me.user_id, role: me.role, email: me.email,
    permissions: me.permissions || [] };
  rememberTenant(session.tenant_id);
  return pane.user;
}

/** Revoke the token; open the provider's logout page when it offers one. */
export async function oidcSignOut(pane, office) {
  const answer = await pane.api.request("POST", "/auth/oidc/logout");
  pane.api.token = null;
  pane.api.tenantId = null;
  pane.user = null;
  delete pane.signOut; // back to Pane.prototype.signOut
  if (answer?.end_session_url && office?.context?.ui) {
    office.context.ui.displayDialogAsync(answer.end_session_url, { height: 40, width: 30 });
  }
  return answer;
}

/** The callback page's job: send the fragment's fields to the pane, then forget them. */
export function relayCallback(office, location = globalThis.location,
  history = globalThis.history) {
  const result = parseCallbackFragment(location.hash);
  history?.replaceState?.(null, "", location.pathname);
  office.context.ui.messageParent(JSON.stringify(result));
  return result;
}

/** Offer "Sign in with <provider>" in `box` when the tenant has one; `onSignedIn(user)`. */
export async function offerProviderButton({ api, pane, office, box, onSignedIn, onError }) {
  const provider = await findProvider(api, tenantHint());
  if (!provider) return null;
  const button = document.createElement("button");
  button.type = "button";
  button.id = "signin-oidc";
  button.textContent = `Sign in with ${provider.display_name}`;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const session = await signInWithDialog(office, provider.login_url);
      await onSignedIn(await adoptSession(pane, session, office));
    } catch (error) {
      onError(error);
    } finally {
      button.disabled = false;
    }
  });
  box.prepend(button);
  return button;
}
