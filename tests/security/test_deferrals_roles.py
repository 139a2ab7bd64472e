"""Role gates of the deferral, inquiry and adjustment routes: allowed exactly when
PERMISSIONS says so (403 naming the permission otherwise)."""

from __future__ import annotations

import pytest

from server.modules.auth.permissions import PERMISSIONS, Role

ROUTES = [
    ("deferrals.read", "GET", "/api/v1/deferrals/liability?as_of=2026-01-01", None),
    ("deferrals.read", "GET", "/api/v1/deferrals", None),
    ("deferrals.read", "GET", "/api/v1/vesting-runs", None),
    ("deferrals.read", "GET", "/api/v1/malus", None),
    ("deferrals.read", "GET", "/api/v1/clawbacks", None),
    ("deferrals.read", "GET", "/api/v1/fund-navs", None),
    ("fund_navs.write", "POST", "/api/v1/fund-navs",
     {"navs": [{"fund_ref": "F9", "nav_date": "2026-01-01", "nav": "10.5", "currency": "EUR"}]}),
    ("inquiries.read", "GET", "/api/v1/inquiries", None),
]


@pytest.mark.parametrize("role", [r.value for r in Role])
@pytest.mark.parametrize(("permission", "method", "path", "body"), ROUTES)
def test_deferral_role_gates(client, make_tenant, role, permission, method, path, body):
    tenant = make_tenant()
    response = client.request(method, path, headers=tenant.users[role].headers, json=body)
    if Role(role) in PERMISSIONS[permission]:
        assert response.status_code in (200, 201), response.text
    else:
        assert response.status_code == 403, response.text
        assert permission in response.json()["detail"]


def test_nav_rows_are_checked_and_never_changed(client, make_tenant):
    tenant = make_tenant()
    headers = tenant.users["finance"].headers
    row = {"fund_ref": "F1", "nav_date": "2026-01-02", "nav": "101.25", "currency": "EUR"}
    assert client.post("/api/v1/fund-navs", headers=headers,
                       json={"navs": [row]}).json() == {"added": 1}
    assert client.post("/api/v1/fund-navs", headers=headers,
                       json={"navs": [row]}).json() == {"added": 0}
    changed = client.post("/api/v1/fund-navs", headers=headers,
                          json={"navs": [row | {"nav": "101.26"}]})
    assert changed.status_code == 409 and "never changed" in changed.json()["detail"]
    bad = client.post("/api/v1/fund-navs", headers=headers,
                      json={"navs": [row | {"nav": "0.00000000001"}]})
    assert bad.status_code == 422
    upload = client.post("/api/v1/fund-navs/upload", headers=headers, files={"file": (
        "navs.csv", b"fund_ref,nav_date,nav,currency\nF2,2026-01-02,abc,EUR\n", "text/csv")})
    assert upload.status_code == 422
    assert upload.json()["errors"][0]["loc"] == ["body", "file", 2, "nav"]
    ok = client.post("/api/v1/fund-navs/upload", headers=headers, files={"file": (
        "navs.csv", b"fund_ref,nav_date,nav,currency\nF2,2026-01-02,99.5,EUR\n", "text/csv")})
    assert ok.status_code == 201 and ok.json() == {"added": 1}
    listed = client.get("/api/v1/fund-navs", headers=headers).json()
    assert [(n["fund_ref"], n["nav"], n["source"]) for n in listed] == [
        ("F1", "101.2500000000", "api"), ("F2", "99.5000000000", "upload")]
