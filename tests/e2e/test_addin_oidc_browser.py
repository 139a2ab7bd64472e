"""The add-in's OIDC sign-in in headless Chromium (addin/tests/browser/oidc.browser.mjs): the
real task pane on a live server, a real oidc-provider, the Office dialog as a real browser
window. bob is refused with the reason shown in the pane; alice signs in through the
provider's own pages in the dialog and the pane shows her as a manager; sign-out revokes her
token and opens the provider's logout page."""

from __future__ import annotations

import json
import os
import subprocess

import httpx

from tests.addin.node import ADDIN, ensure_node_modules, tool
from tests.e2e.test_addin_browser import ARTIFACTS, live_server, run_app  # noqa: F401
from tests.oidc.idp import ACCOUNTS, CLIENT_SECRET, registered_client, running_provider

CLIENT = "paysheet-addin"


def test_addin_signs_in_through_the_office_dialog(live_server, make_tenant, client,  # noqa: F811
                                                  tmp_path):
    node, chromium = tool("node"), tool("chromium")
    ensure_node_modules()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    callback = f"{live_server}/api/v1/auth/oidc/callback"
    with running_provider(tmp_path, extra_clients=(
            registered_client(CLIENT, CLIENT_SECRET, callback),)) as idp:
        tenant = make_tenant()
        # Through the live server: the secret is encrypted under its own server secret.
        configured = httpx.put(
            f"{live_server}/api/v1/tenants/{tenant.id}/identity-provider",
            headers=tenant.users["admin"].headers,
            json={"display_name": "Fund SSO", "issuer": idp.issuer, "client_id": CLIENT,
                  "client_secret": CLIENT_SECRET, "scopes": "openid email profile groups",
                  "role_mapping": {"paysheet-managers": "manager"},
                  "team_mapping": {"team-T01": "T01", "team-T02": "T02"}})
        assert configured.status_code == 200, configured.text
        env = os.environ | {
            "BASE_URL": live_server, "TENANT": str(tenant.id), "ISSUER": idp.issuer,
            "ACCOUNTS": json.dumps({
                "signed_in": {"login": "alice", "email": ACCOUNTS["alice"]["email"]},
                "refused": {"login": "bob", "email": ACCOUNTS["bob"]["email"]}}),
            "ARTIFACTS": str(ARTIFACTS), "CHROMIUM": chromium}
        result = subprocess.run([node, "tests/browser/oidc.browser.mjs"], cwd=ADDIN, env=env,
                                capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "oidc browser flow passed" in result.stdout, result.stdout
    assert (ARTIFACTS / "addin-oidc-signed-in.png").stat().st_size > 5_000

    # What the pane did, seen from the server: alice provisioned as a manager of T01 and
    # T02, her sign-in and sign-out audited, bob's refusal audited, no account for bob.
    admin = tenant.users["admin"].headers
    users = {u["email"]: u for u in client.get(f"/api/v1/tenants/{tenant.id}/users",
                                                headers=admin).json()["items"]}
    alice = users[ACCOUNTS["alice"]["email"]]
    assert (alice["role"], alice["teams"]) == ("manager", ["T01", "T02"])
    assert ACCOUNTS["bob"]["email"] not in users
    events = client.get("/api/v1/audit", params={"limit": 500},
                        headers=tenant.users["auditor"].headers).json()["items"]
    actions = [(e["action"], e.get("entity_id")) for e in events]
    assert ("auth.login", alice["id"]) in actions and ("auth.logout", alice["id"]) in actions
    refusals = [e["after"]["refused"] for e in events if e["action"] == "auth.login.refused"]
    assert any("none of your groups (all-staff)" in text for text in refusals), refusals

