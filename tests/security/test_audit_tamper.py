"""The three tampers of issue 15 against the keyed, anchored audit chain, with real roles:
tail truncation and rewrite-and-rehash as the owner role, a forged append as the app role.
Each makes GET /audit/verify fail naming the first bad event or the checkpoint. Plus key
rotation: old events still verify under their own key id."""

from __future__ import annotations

import base64
import os
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from server.db import session as db
from server.modules.audit import keys
from server.modules.audit import service as audit
from server.modules.audit.models import AuditEvent

TRIGGER = "audit_events_append_only"


def _append(tenant_id: uuid.UUID, count: int) -> list[int]:
    widget = uuid.uuid4()
    ids = []
    for index in range(count):
        with db.tenant_session(tenant_id) as session:
            ids.append(audit.record_event(session, principal_or_actor_id=None,
                                          action="widget.step", entity="widget",
                                          entity_id=widget, after={"n": index}).id)
    return ids


def _checkpoint(tenant_id: uuid.UUID) -> int:
    with db.tenant_session(tenant_id) as session:
        return audit.write_checkpoint(session).seq


def _verify(client, tenant) -> dict:
    response = client.get("/api/v1/audit/verify", headers=tenant.users["auditor"].headers)
    assert response.status_code == 200, response.text
    return response.json()


def _as_owner_without_trigger(owner_conn: psycopg.Connection, statements: list[tuple]) -> None:
    """The owner role switches the append-only trigger off, tampers, and switches it on."""
    with owner_conn.transaction():
        owner_conn.execute(f"alter table comp.audit_events disable trigger {TRIGGER}")
        for sql, params in statements:
            owner_conn.execute(sql, params)
        owner_conn.execute(f"alter table comp.audit_events enable trigger {TRIGGER}")


def _rows(conn: psycopg.Connection, tenant_id: uuid.UUID, from_id: int) -> list[AuditEvent]:
    columns = ("id, tenant_id, actor_user_id, action, entity, entity_id, before, after, at, "
               "request_id, prev_signature, signature, seq, key_id, mac")
    cursor = conn.execute(f"select {columns} from comp.audit_events where tenant_id = %s "
                          "and id >= %s order by id", (tenant_id, from_id))
    names = [c.name for c in cursor.description]
    return [AuditEvent(**dict(zip(names, row, strict=True))) for row in cursor.fetchall()]


def test_an_untouched_chain_verifies_with_its_checkpoint(client, make_tenant) -> None:
    tenant = make_tenant()
    _append(tenant.id, 3)
    seq = _checkpoint(tenant.id)
    report = _verify(client, tenant)
    assert (report["ok"], report["checkpoints"], report["legacy_unkeyed"]) == (True, seq, 0)
    events = client.get("/api/v1/audit", headers=tenant.users["auditor"].headers).json()
    assert all(e["mac"] and e["key_id"] for e in events["items"])


def test_tail_truncation_is_named_by_the_checkpoint(client, make_tenant, owner_conn) -> None:
    tenant = make_tenant()
    ids = _append(tenant.id, 4)
    seq = _checkpoint(tenant.id)
    _as_owner_without_trigger(owner_conn, [
        ("delete from comp.audit_events where id = any(%s)", (ids[-2:],))])
    report = _verify(client, tenant)
    assert report["ok"] is False
    assert report["broken_checkpoint"] == seq
    assert "removed from the tail" in report["reason"]
    assert report["broken_event_id"] == ids[-1]  # the head the checkpoint anchored


def test_rewrite_and_rehash_by_the_owner_is_named_at_the_rewritten_event(
        client, make_tenant, owner_conn) -> None:
    tenant = make_tenant()
    ids = _append(tenant.id, 5)
    _checkpoint(tenant.id)
    events = _rows(owner_conn, tenant.id, ids[2])
    previous = events[0].prev_signature
    statements = []
    for index, event in enumerate(events):  # rewrite ids[2], re-hash everything after it
        if index == 0:
            event.after = {"n": "rewritten"}
        event.prev_signature = previous
        event.signature = audit.event_signature(event)
        previous = event.signature
        statements.append(("update comp.audit_events set after = %s::jsonb, "
                           "prev_signature = %s, signature = %s where id = %s",
                           (audit.canonical_json(event.after), event.prev_signature,
                            event.signature, event.id)))
    _as_owner_without_trigger(owner_conn, statements)
    report = _verify(client, tenant)
    assert (report["ok"], report["broken_event_id"]) == (False, ids[2])
    assert "MAC does not match" in report["reason"]


@pytest.mark.parametrize("mac", ["random", None])
def test_forged_append_by_the_app_role_is_named(client, make_tenant, app_conn, mac) -> None:
    tenant = make_tenant()
    _append(tenant.id, 2)
    app_conn.execute("select set_config('app.tenant_id', %s, true)", (str(tenant.id),))
    head = _rows(app_conn, tenant.id, 0)[-1]
    forged = AuditEvent(tenant_id=tenant.id, actor_user_id=tenant.users["finance"].id,
                        action="run.finalize", entity="plan_run", entity_id=uuid.uuid4(),
                        before={"status": "finance_approved"}, after={"status": "finalized"},
                        at=datetime.now(UTC), request_id=None, prev_signature=head.signature,
                        seq=head.seq + 1, key_id=head.key_id)
    forged.signature = audit.event_signature(forged)
    forged.mac = secrets.token_hex(32) if mac else None
    forged_id = app_conn.execute(
        "insert into comp.audit_events (tenant_id, actor_user_id, action, entity, entity_id, "
        "before, after, at, request_id, prev_signature, signature, seq, key_id, mac) values "
        "(%s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s, %s, %s, %s) returning id",
        (tenant.id, forged.actor_user_id, forged.action, forged.entity, forged.entity_id,
         audit.canonical_json(forged.before), audit.canonical_json(forged.after), forged.at,
         None, forged.prev_signature, forged.signature, forged.seq, forged.key_id,
         forged.mac)).fetchone()[0]
    app_conn.commit()
    report = _verify(client, tenant)
    assert (report["ok"], report["broken_event_id"]) == (False, forged_id)
    assert "MAC" in report["reason"]


def test_the_app_role_cannot_remove_checkpoints(make_tenant, app_conn) -> None:
    tenant = make_tenant()
    _checkpoint(tenant.id)
    app_conn.execute("select set_config('app.tenant_id', %s, true)", (str(tenant.id),))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_conn.execute("delete from comp.audit_checkpoints")


@pytest.fixture
def two_keys(settings) -> Iterator[tuple[keys.StaticKeyring, keys.StaticKeyring]]:
    """The server's keyring is process state: restore it whatever the test does."""
    old = audit.keyring()
    first = keys.StaticKeyring({"old": os.urandom(32)}, "old")
    both = keys.StaticKeyring({**first.keys, "new": os.urandom(32)}, "new")
    yield first, both
    audit.configure_audit_keys(settings, old)


def test_rotation_keeps_old_events_verifiable(client, make_tenant, settings, two_keys) -> None:
    first, both = two_keys
    audit.configure_audit_keys(settings, first)
    tenant = make_tenant()
    _append(tenant.id, 2)
    _checkpoint(tenant.id)
    audit.configure_audit_keys(settings, both)  # rotate: new key active, old one kept
    ids = _append(tenant.id, 2)
    report = _verify(client, tenant)
    assert report["ok"] is True, report
    key_ids = {e["id"]: e["key_id"] for e in client.get(
        "/api/v1/audit", headers=tenant.users["auditor"].headers).json()["items"]}
    assert {key_ids[i] for i in ids} == {"new"} and "old" in key_ids.values()
    # A server that lost the old key names the first event it can no longer check.
    audit.configure_audit_keys(settings, keys.StaticKeyring({"new": both.keys["new"]}, "new"))
    report = _verify(client, tenant)
    assert report["ok"] is False and "unknown" in report["reason"]


def test_audit_keys_setting_parses_and_refuses_short_keys() -> None:
    good = base64.b64encode(os.urandom(32)).decode()
    ring = keys.parse_keys(f"a:{good},b:{good}", None)
    assert ring.active_key_id == "b"
    with pytest.raises(ValueError, match="at least 32 bytes"):
        keys.parse_keys(f"a:{base64.b64encode(b'short').decode()}", None)
    with pytest.raises(ValueError, match="not in AUDIT_KEYS"):
        keys.parse_keys(f"a:{good}", "zz")


def test_key_file_is_private_and_rotation_keeps_old_keys(tmp_path) -> None:
    ring = keys.file_keyring(tmp_path)
    assert (tmp_path / keys.KEY_FILE).stat().st_mode & 0o077 == 0
    new_id = keys.rotate_file_key(tmp_path)
    rotated = keys.file_keyring(tmp_path)
    assert rotated.active_key_id == new_id != ring.active_key_id
    assert rotated.key(ring.active_key_id) == ring.key(ring.active_key_id)
