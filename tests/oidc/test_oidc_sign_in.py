"""OIDC sign-in end to end against a real, certified OpenID provider (npm `oidc-provider`),
started here on a free port: authorization code + PKCE through the provider's own login and
consent pages, users matched or provisioned, roles and teams from the groups claim, sign-out;
and the refusals: a wrong audience, an expired ID token, a replayed code, a tampered token."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import redis
from fastapi.testclient import TestClient

from server.app import create_app
from server.modules.auth.service import configure_login_policy, configure_sessions
from server.settings import Settings
from tests.conftest import TenantFixture
from tests.oidc.idp import (
    CALLBACK,
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_ID,
    Provider,
    query,
    running_provider,
    through_provider,
)


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with running_provider(tmp_path_factory.mktemp("idp")) as provider:
        yield provider


@pytest.fixture(scope="module")
def late_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """A provider whose clock runs 20 minutes behind: its 10-minute ID tokens arrive expired."""
    with running_provider(tmp_path_factory.mktemp("late-idp"), clock_offset_seconds=-1200) as p:
        yield p


def settings_body(issuer: str, **changes: Any) -> dict[str, Any]:
    body = {
        "display_name": "Fund SSO", "issuer": issuer, "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "scopes": "openid email profile groups",
        "role_mapping": {"paysheet-managers": "manager", "paysheet-hr": "hr"},
        "team_mapping": {"team-T01": "T01", "team-T02": "T02"},
    }
    return body | changes


def configure(client: TestClient, tenant: TenantFixture, issuer: str, **changes: Any) -> dict:
    answer = client.put(f"/api/v1/tenants/{tenant.id}/identity-provider",
                        json=settings_body(issuer, **changes),
                        headers=tenant.users["admin"].headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def callback_url(client: TestClient, tenant_id: uuid.UUID, account: str,
                 return_to: str | None = None) -> str:
    """Start at our login route and go through the provider as `account`, up to the callback."""
    params = {"return_to": return_to} if return_to else {}
    start = client.get(f"/api/v1/auth/oidc/{tenant_id}/login", params=params,
                       follow_redirects=False)
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    sent = query(authorize)
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert sent["client_id"] == CLIENT_ID and sent["redirect_uri"] == CALLBACK and sent["nonce"]
    with httpx.Client(follow_redirects=False) as browser:
        return through_provider(browser, authorize, account, CALLBACK)


def callback(client: TestClient, url: str) -> httpx.Response:
    return client.get(url.removeprefix("http://testserver"), follow_redirects=False)


def sign_in(client: TestClient, tenant_id: uuid.UUID, account: str) -> dict[str, Any]:
    answer = callback(client, callback_url(client, tenant_id, account))
    assert answer.status_code == 200, answer.text
    return answer.json()


def me(client: TestClient, token: str) -> httpx.Response:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def refusal(answer: httpx.Response) -> str:
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    return answer.json()["detail"]


def test_sign_in_provisions_maps_groups_and_signs_out(client: TestClient, make_tenant, idp):
    tenant = make_tenant()
    configure(client, tenant, idp.issuer)
    public = client.get(f"/api/v1/auth/oidc/{tenant.id}/provider").json()
    assert public["display_name"] == "Fund SSO"
    assert public["login_url"].endswith(f"/api/v1/auth/oidc/{tenant.id}/login")

    first = sign_in(client, tenant.id, "alice")
    assert first["tenant_id"] == str(tenant.id) and first["token_type"] == "bearer"
    who = me(client, first["access_token"]).json()
    assert (who["email"], who["role"], who["teams"]) == ("alice@fund.example", "manager",
                                                        ["T01", "T02"])
    assert who["display_name"] == "Alice Manager"

    # The mapping changes at Paysheet: the next sign-in applies it to the same user.
    configure(client, tenant, idp.issuer, team_mapping={"team-T02": "T09"})
    again = sign_in(client, tenant.id, "alice")
    assert again["user_id"] == first["user_id"]
    assert me(client, again["access_token"]).json()["teams"] == ["T09"]
    events = client.get("/api/v1/audit", params={"entity_id": first["user_id"]},
                        headers=tenant.users["admin"].headers)
    assert events.status_code == 200, events.text
    actions = [e["action"] for e in events.json()["items"]]
    assert actions.count("auth.login") == 2 and "user.create" in actions, actions
    assert "user.update" in actions  # the team change, recorded with its before/after

    out = client.post("/api/v1/auth/oidc/logout",
                      headers={"Authorization": f"Bearer {again['access_token']}"})
    assert out.status_code == 200, out.text
    end_session = out.json()["end_session_url"]
    assert end_session.startswith(f"{idp.issuer}/") and "id_token_hint=" in end_session
    assert me(client, again["access_token"]).status_code == 401  # our token is revoked
    assert me(client, first["access_token"]).status_code == 200  # the other session stays
    logout_page = httpx.get(end_session)
    assert logout_page.status_code == 200 and "logout" in logout_page.text.lower()


def test_existing_account_matched_by_verified_email_only(client: TestClient, make_tenant, idp):
    tenant = make_tenant()
    admin = tenant.users["admin"].headers
    for email in ("hannah@fund.example", "carol@fund.example"):
        made = client.post(f"/api/v1/tenants/{tenant.id}/users", headers=admin,
                           json={"email": email, "role": "readonly"})
        assert made.status_code == 201, made.text
    hannah_id = client.get(f"/api/v1/tenants/{tenant.id}/users", headers=admin).json()["items"]
    hannah_id = next(u["id"] for u in hannah_id if u["email"] == "hannah@fund.example")
    configure(client, tenant, idp.issuer)

    hannah = sign_in(client, tenant.id, "hannah")
    assert hannah["user_id"] == hannah_id
    assert me(client, hannah["access_token"]).json()["role"] == "hr"  # from paysheet-hr

    # carol's email is not verified at the provider: no take-over of carol's account, and
    # no account created for an unverified address.
    detail = refusal(callback(client, callback_url(client, tenant.id, "carol")))
    assert "no verified email" in detail
    # bob's groups map to no role and the tenant has no default role.
    detail = refusal(callback(client, callback_url(client, tenant.id, "bob")))
    assert "none of your groups (all-staff) maps to a Paysheet role" in detail
    configure(client, tenant, idp.issuer, default_role="readonly", jit_provisioning=False)
    detail = refusal(callback(client, callback_url(client, tenant.id, "bob")))
    assert "no Paysheet account" in detail


@pytest.fixture
def no_new_session(client: TestClient, owner_conn: psycopg.Connection):
    """Check a refused callback end to end: 401 naming the reason, no bearer token, OIDC
    session, user or Redis session made in the tenant, and an `auth.login.refused` event."""

    def tokens(tenant_id: uuid.UUID) -> tuple[int, ...]:
        row = owner_conn.execute(
            "select (select count(*) from comp.api_tokens where tenant_id = %(t)s),"
            " (select count(*) from comp.oidc_sessions where tenant_id = %(t)s),"
            " (select count(*) from comp.users where tenant_id = %(t)s)", {"t": tenant_id})
        return tuple(row.fetchone())

    def check(tenant: TenantFixture, answer: httpx.Response, before: tuple[int, ...],
              reason: str) -> str:
        detail = refusal(answer)
        assert reason in detail, detail
        assert "access_token" not in answer.text
        assert tokens(tenant.id) == before, "a refused sign-in left a token, session or user"
        events = client.get("/api/v1/audit", params={"entity": "tenant", "limit": 500},
                            headers=tenant.users["auditor"].headers)
        assert events.status_code == 200, events.text
        refused = [e["after"]["refused"] for e in events.json()["items"]
                   if e["action"] == "auth.login.refused"]
        assert any(reason in text and "OIDC sign-in through http://127.0.0.1:" in text
                   for text in refused), refused
        return detail

    check.tokens = tokens  # type: ignore[attr-defined]
    return check


def test_replayed_authorization_code_is_refused(client: TestClient, make_tenant, idp,
                                                no_new_session):
    tenant = make_tenant()
    configure(client, tenant, idp.issuer)
    url = callback_url(client, tenant.id, "alice")
    assert callback(client, url).status_code == 200
    # The very same callback again (same state and code), as a replaying browser sends it.
    before = no_new_session.tokens(tenant.id)
    no_new_session(tenant, callback(client, url), before, "already used sign-in state")

    # The same code under a fresh state of ours: the provider itself refuses the used code.
    fresh = client.get(f"/api/v1/auth/oidc/{tenant.id}/login", follow_redirects=False)
    state = query(fresh.headers["location"])["state"]
    replay = client.get("/api/v1/auth/oidc/callback",
                        params={"state": state, "code": query(url)["code"]})
    no_new_session(tenant, replay, before, "refused the authorization code (invalid_grant")


def test_expired_id_token_is_refused(client: TestClient, make_tenant, late_idp,
                                     no_new_session):
    """The provider's clock runs 20 minutes behind: the ID token it issues has expired."""
    tenant = make_tenant()
    configure(client, tenant, late_idp.issuer)
    before = no_new_session.tokens(tenant.id)
    detail = no_new_session(tenant, callback(client, callback_url(client, tenant.id, "alice")),
                            before, "ID token refused: it expired")
    assert detail.startswith("ID token refused: it expired (exp ")


def _flow_as_bob(client: TestClient, tenant: TenantFixture, client_id: str) -> httpx.Response:
    """The whole flow as bob for a tenant configured with `client_id` (idp.HOSTILE names the
    clients the provider misbehaves for): our login, the provider's pages, our callback."""
    start = client.get(f"/api/v1/auth/oidc/{tenant.id}/login", follow_redirects=False)
    assert query(start.headers["location"])["client_id"] == client_id
    with httpx.Client(follow_redirects=False) as browser:
        url = through_provider(browser, start.headers["location"], "bob", CALLBACK)
    return callback(client, url)


def test_id_token_for_another_audience_is_refused(client: TestClient, make_tenant, idp,
                                                  no_new_session):
    """The provider answers our code with an ID token it signed for another client: a
    genuine signature, the wrong `aud`."""
    tenant = make_tenant()
    configure(client, tenant, idp.issuer, client_id="paysheet-wrong-audience")
    before = no_new_session.tokens(tenant.id)
    no_new_session(tenant, _flow_as_bob(client, tenant, "paysheet-wrong-audience"), before,
                   f"its audience '{OTHER_ID}' is not this client ('paysheet-wrong-audience')")


@pytest.mark.parametrize("client_id", ["paysheet-tampered", "paysheet-foreign-key"])
def test_tampered_id_token_is_refused(client: TestClient, make_tenant, idp, no_new_session,
                                      client_id: str):
    """paysheet-tampered: bob's ID token arrives with hannah's email and the HR group under
    the provider's original signature; paysheet-foreign-key: signed by a key that is not in
    the provider's JWKS, under its key id. Neither signs anyone in, least of all hannah."""
    tenant = make_tenant()
    admin = tenant.users["admin"].headers
    made = client.post(f"/api/v1/tenants/{tenant.id}/users", headers=admin,
                       json={"email": "hannah@fund.example", "role": "readonly"})
    assert made.status_code == 201, made.text
    configure(client, tenant, idp.issuer, client_id=client_id)
    before = no_new_session.tokens(tenant.id)
    no_new_session(tenant, _flow_as_bob(client, tenant, client_id), before,
                   "ID token refused: its signature does not verify against the provider's keys")
    users = client.get(f"/api/v1/tenants/{tenant.id}/users", headers=admin).json()["items"]
    hannah = next(u for u in users if u["email"] == "hannah@fund.example")
    assert hannah["role"] == "readonly"  # the forged group changed nothing


def test_a_genuine_token_of_the_same_provider_signs_in(client: TestClient, make_tenant, idp):
    """The control of the refusals above: the same flow and account, the well-behaved client."""
    tenant = make_tenant()
    configure(client, tenant, idp.issuer, default_role="readonly")
    answer = _flow_as_bob(client, tenant, CLIENT_ID)
    assert answer.status_code == 200, answer.text
    assert me(client, answer.json()["access_token"]).json()["email"] == "bob@fund.example"


def test_addin_gets_the_token_in_the_callback_page_fragment(client: TestClient, make_tenant,
                                                            idp):
    tenant = make_tenant()
    configure(client, tenant, idp.issuer)
    answer = callback(client, callback_url(client, tenant.id, "alice", return_to="addin"))
    assert answer.status_code == 303
    page, _, fragment = answer.headers["location"].partition("#")
    assert page == "http://testserver/addin/oidc-callback.html"
    fields = dict(part.split("=", 1) for part in fragment.split("&"))
    assert me(client, fields["access_token"]).status_code == 200
    assert client.get("/addin/oidc-callback.html").status_code == 200
    # A refusal goes to the same page, as `#error=…`, for the pane to show.
    url = callback_url(client, tenant.id, "bob", return_to="addin")
    refused = callback(client, url)
    assert refused.status_code == 303 and "#error=none+of+your+groups" in refused.headers[
        "location"]


def test_provider_settings_admin_only_secret_never_returned(client: TestClient, make_tenant,
                                                            idp, owner_conn: psycopg.Connection):
    tenant, other = make_tenant(), make_tenant()
    path = f"/api/v1/tenants/{tenant.id}/identity-provider"
    hr = client.put(path, json=settings_body(idp.issuer), headers=tenant.users["hr"].headers)
    assert hr.status_code == 403
    assert client.get(f"/api/v1/auth/oidc/{tenant.id}/provider").status_code == 404
    saved = configure(client, tenant, idp.issuer)
    assert saved["client_secret_set"] is True and saved["redirect_uri"] == CALLBACK
    read = client.get(path, headers=tenant.users["admin"].headers)
    assert read.status_code == 200 and CLIENT_SECRET not in read.text
    assert client.get(path, headers=other.users["admin"].headers).status_code == 404
    stored = owner_conn.execute(
        "select client_secret_ciphertext from comp.oidc_providers where tenant_id = %s",
        (tenant.id,)).fetchone()
    assert stored is not None and CLIENT_SECRET.encode() not in bytes(stored[0])

    # Keeping the secret: omit it. The sign-in still authenticates to the provider with it.
    kept = client.put(path, json={k: v for k, v in settings_body(idp.issuer).items()
                                  if k != "client_secret"},
                      headers=tenant.users["admin"].headers)
    assert kept.json()["client_secret_set"] is True
    assert sign_in(client, tenant.id, "alice")["tenant_id"] == str(tenant.id)

    bad = [
        (settings_body("http://idp.example.com"), "body.issuer"),
        (settings_body(idp.issuer, scopes="email profile"), "body.scopes"),
        (settings_body(idp.issuer, role_mapping={"x": "superuser"}), "body.role_mapping.x"),
        (settings_body(idp.issuer.replace("127.0.0.1", "localhost") + "/nowhere"),
         "body.issuer"),
    ]
    for body, loc in bad:
        answer = client.put(path, json=body, headers=tenant.users["admin"].headers)
        assert answer.status_code == 422, answer.text
        assert loc in {".".join(map(str, e["loc"])) for e in answer.json()["errors"]}, (
            loc, answer.json())
    assert client.delete(path, headers=tenant.users["admin"].headers).status_code == 204
    assert client.get(f"/api/v1/auth/oidc/{tenant.id}/provider").status_code == 404


def test_forged_state_is_refused(client: TestClient):
    for state in ("not-a-tenant.x", f"{uuid.uuid4()}.made-up"):
        detail = refusal(client.get("/api/v1/auth/oidc/callback",
                                    params={"state": state, "code": "c"}))
        assert "sign-in state" in detail



@pytest.mark.parametrize("buckets", ["memory", "redis"])
def test_sign_in_routes_are_rate_limited_per_client_address(client: TestClient, make_tenant,
                                                            idp, settings: Settings,
                                                            redis_url: str, buckets: str):
    """Login and callback share one bucket per client address (in process, or in Redis
    shared by every API process); a header the client makes up (a forwarded-for address, a
    bearer token) buys no fresh bucket, another address has its own."""
    tenant = make_tenant()
    configure(client, tenant, idp.issuer)
    changes: dict[str, Any] = {"sign_in_rate_limit_per_minute": 1, "sign_in_rate_limit_burst": 3}
    if buckets == "redis":
        changes["redis_url"] = redis_url
    app = create_app(settings.model_copy(update=changes))
    login = f"/api/v1/auth/oidc/{tenant.id}/login"
    # Documentation addresses, fresh per run: a shared Redis keeps a bucket for 3 minutes.
    one, two = (f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}" for _ in range(2))
    try:
        with TestClient(app, client=(one, 4000)) as first:
            answers = [first.get(login, follow_redirects=False).status_code for _ in range(3)]
            spoofed = first.get(login, follow_redirects=False, headers={
                "X-Forwarded-For": two, "X-Real-IP": two, "Forwarded": f"for={two}",
                "Authorization": f"Bearer {uuid.uuid4().hex}"})
            back = first.get("/api/v1/auth/oidc/callback", params={"state": "x.y", "code": "c"})
        with TestClient(app, client=(two, 4000)) as other:
            elsewhere = other.get(login, follow_redirects=False)
    finally:  # sessions and login policy are process state: back to the shared app's
        configure_sessions(settings)
        configure_login_policy(settings)
    assert answers == [302, 302, 302]
    for limited_answer in (spoofed, back):
        assert limited_answer.status_code == 429, limited_answer.text
        assert limited_answer.headers["content-type"].startswith("application/problem+json")
        assert "sign-in rate limit exceeded" in limited_answer.json()["detail"]
        assert int(limited_answer.headers["Retry-After"]) >= 1
    assert elsewhere.status_code == 302
    if buckets == "redis":
        store = redis.Redis.from_url(redis_url)
        assert store.exists(f"paysheet:ratelimit:sign-in:ip:{one}")
        assert store.ttl(f"paysheet:ratelimit:sign-in:ip:{one}") > 0


def test_a_client_secret_under_another_server_secret_is_named(client: TestClient, make_tenant,
                                                              idp, settings: Settings):
    """An API process whose server secret differs (SIGNING_KEY_SECRET changed or not shared)
    cannot decrypt the stored client secret: a problem saying so, not a bare crash."""
    tenant = make_tenant()
    configure(client, tenant, idp.issuer)
    another = "another-server-secret-" + "x" * 32
    other = create_app(settings.model_copy(update={"signing_key_secret": another}))
    try:
        with TestClient(other, raise_server_exceptions=False) as elsewhere:
            answer = elsewhere.get(f"/api/v1/auth/oidc/{tenant.id}/login",
                                   follow_redirects=False)
    finally:
        configure_login_policy(settings)
    assert answer.status_code == 500, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "stored client secret does not decrypt" in answer.json()["detail"]
    assert client.get(f"/api/v1/auth/oidc/{tenant.id}/login",
                      follow_redirects=False).status_code == 302  # the right secret still works
