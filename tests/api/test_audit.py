"""GET /audit (filters, cursor pagination), GET /audit/verify, and the audit service."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import OperationalError

from server.db import session as db
from server.modules.audit import service as audit


def _events(client, headers, **params):
    response = client.get("/api/v1/audit", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _append(tenant_id, action: str, entity_id: uuid.UUID, actor=None) -> int:
    with db.tenant_session(tenant_id) as session:
        return audit.record_event(
            session,
            principal_or_actor_id=actor,
            action=action,
            entity="widget",
            entity_id=entity_id,
            after={"n": action},
        ).id


def test_auditor_and_admin_read_the_log_others_do_not(client, make_tenant) -> None:
    tenant = make_tenant()
    for role in ("auditor", "admin"):
        page = _events(client, tenant.users[role].headers)
        assert {"tenant.create", "user.create"} <= {e["action"] for e in page["items"]}
    for role in ("hr", "manager", "finance", "readonly"):
        response = client.get("/api/v1/audit", headers=tenant.users[role].headers)
        assert response.status_code == 403
        assert (
            client.get("/api/v1/audit/verify", headers=tenant.users[role].headers).status_code
            == 403
        )
    assert client.get("/api/v1/audit").status_code == 401


def test_filters_by_entity_actor_and_time(client, make_tenant) -> None:
    tenant = make_tenant()
    headers = tenant.users["auditor"].headers
    widget, actor = uuid.uuid4(), tenant.users["hr"].id
    before = datetime.now(UTC) - timedelta(seconds=1)
    ids = [_append(tenant.id, f"widget.v{i}", widget, actor) for i in range(3)]
    _append(tenant.id, "widget.other", uuid.uuid4())
    by_id = _events(client, headers, entity_id=str(widget))["items"]
    assert [e["id"] for e in by_id] == ids[::-1]
    by_actor = _events(client, headers, actor=str(actor), entity="widget")["items"]
    assert [e["id"] for e in by_actor] == ids[::-1]
    assert len(_events(client, headers, entity="widget")["items"]) == 4
    recent = _events(client, headers, since=before.isoformat(), entity="widget")["items"]
    assert len(recent) == 4
    assert _events(client, headers, until=before.isoformat(), entity="widget")["items"] == []


def test_cursor_pagination_walks_every_event_once(client, make_tenant) -> None:
    tenant = make_tenant()
    headers = tenant.users["admin"].headers
    widget = uuid.uuid4()
    ids = [_append(tenant.id, "widget.touch", widget) for _ in range(5)]
    seen, cursor = [], None
    while True:
        params = {"entity_id": str(widget), "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = _events(client, headers, **params)
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"cursor": "garbage!"}, ["query", "cursor"]),
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 501}, ["query", "limit"]),
        ({"actor": "me"}, ["query", "actor"]),
        ({"since": "yesterday"}, ["query", "since"]),
    ],
)
def test_bad_query_parameters_are_422_naming_them(client, make_tenant, params, loc) -> None:
    tenant = make_tenant()
    response = client.get("/api/v1/audit", params=params, headers=tenant.users["admin"].headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == loc


def test_events_carry_the_request_id(client, make_tenant) -> None:
    tenant = make_tenant()
    headers = tenant.users["admin"].headers | {"X-Request-ID": "req-audit-42"}
    created = client.post(
        f"/api/v1/tenants/{tenant.id}/users",
        headers=headers,
        json={"email": "rid@example.com", "role": "readonly"},
    )
    assert created.headers["x-request-id"] == "req-audit-42"
    event = _events(client, headers, entity_id=created.json()["id"])["items"][0]
    assert event["request_id"] == "req-audit-42"


def test_verify_reports_ok_then_the_first_tampered_event(client, make_tenant, owner_conn):
    tenant = make_tenant()
    headers = tenant.users["auditor"].headers
    widget = uuid.uuid4()
    ids = [_append(tenant.id, "widget.step", widget) for _ in range(4)]
    report = client.get("/api/v1/audit/verify", headers=headers).json()
    assert report["ok"] is True and report["checked"] >= 4 and report["broken_event_id"] is None
    owner_conn.execute("alter table comp.audit_events disable trigger audit_events_append_only")
    try:
        owner_conn.execute(
            'update comp.audit_events set after = \'{"n": "forged"}\' where id = %s', (ids[1],)
        )
    finally:
        owner_conn.execute("alter table comp.audit_events enable trigger audit_events_append_only")
    report = client.get("/api/v1/audit/verify", headers=headers).json()
    assert report == {
        "ok": False,
        "checked": report["checked"],
        "broken_event_id": ids[1],
        "reason": "signature does not match the event",
        "broken_checkpoint": None,
        "checkpoints": 0,
        "legacy_unkeyed": 0,
    }
    other = make_tenant()
    assert (
        client.get("/api/v1/audit/verify", headers=other.users["auditor"].headers).json()["ok"]
        is True
    )


def test_deleting_an_event_breaks_the_link_of_the_next(client, make_tenant, owner_conn):
    tenant = make_tenant()
    widget = uuid.uuid4()
    ids = [_append(tenant.id, "widget.step", widget) for _ in range(3)]
    owner_conn.execute("alter table comp.audit_events disable trigger audit_events_append_only")
    try:
        owner_conn.execute("delete from comp.audit_events where id = %s", (ids[1],))
    finally:
        owner_conn.execute("alter table comp.audit_events enable trigger audit_events_append_only")
    report = client.get("/api/v1/audit/verify", headers=tenant.users["admin"].headers).json()
    assert report["broken_event_id"] == ids[2]
    assert report["reason"] == "prev_signature does not link"


def test_refusal_is_recorded_even_when_the_request_rolls_back(make_tenant) -> None:
    tenant = make_tenant()
    plan = uuid.uuid4()
    with pytest.raises(RuntimeError), db.tenant_session(tenant.id) as session:
        _ = session  # the request's own work, rolled back below
        audit.record_refusal(
            tenant.id, tenant.users["hr"].id, "plan.update", "bonus_plan", plan, "plan is locked"
        )
        raise RuntimeError("request fails with 409")
    with db.tenant_session(tenant.id) as session:
        events, _ = audit.list_events(session, audit.AuditFilter(entity_id=plan), 10, None)
    assert [(e.action, e.after) for e in events] == [
        ("plan.update.refused", {"refused": "plan is locked"})
    ]


def test_concurrent_appends_keep_one_chain(make_tenant) -> None:
    tenant = make_tenant()
    widget = uuid.uuid4()
    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(lambda i: _append(tenant.id, f"widget.c{i}", widget), range(12)))
    with db.tenant_session(tenant.id) as session:
        report = audit.verify_chain(session)
        events, _ = audit.list_events(session, audit.AuditFilter(), 100, None)
    assert report.ok and len(set(ids)) == 12
    links = [e.prev_signature for e in events]
    assert len(set(links)) == len(links)  # no two events share a predecessor: no fork


def test_canonical_json_is_stable_and_float_free() -> None:
    from decimal import Decimal

    value = {"b": Decimal("1.10"), "a": [1, 2.5, None], "c": uuid.UUID(int=1)}
    assert audit.canonical_json(audit.to_jsonable(value)) == (
        '{"a":[1,"2.5",null],"b":"1.10","c":"00000000-0000-0000-0000-000000000001"}'
    )
    with pytest.raises(TypeError):
        audit.to_jsonable(object())


def test_refusal_after_own_append_fails_instead_of_deadlocking(make_tenant, monkeypatch):
    monkeypatch.setattr(audit, "REFUSAL_LOCK_TIMEOUT", "200ms")
    tenant = make_tenant()
    with (
        pytest.raises(OperationalError, match="lock timeout"),
        db.tenant_session(tenant.id) as session,
    ):
        audit.record_event(
            session,
            principal_or_actor_id=None,
            action="widget.make",
            entity="widget",
            entity_id=uuid.uuid4(),
        )
        audit.record_refusal(tenant.id, None, "widget.edit", "widget", uuid.uuid4(), "locked")
