"""Tenant signing keys: public half over the API, private half encrypted at rest, RLS forced."""

from __future__ import annotations

import base64
import uuid

import psycopg
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from psycopg import errors
from sqlalchemy import select

from server.db import session as db
from server.modules.audit.models import AuditEvent
from server.modules.reports import signing
from server.modules.reports.models import TenantSigningKey
from server.settings import Settings


def _get_key(client, tenant, role: str = "readonly"):
    return client.get(f"/api/v1/tenants/{tenant.id}/signing-key",
                      headers=tenant.users[role].headers)


@pytest.mark.parametrize("role", ["admin", "hr", "manager", "finance", "auditor", "readonly"])
def test_every_role_reads_the_same_public_key(client, make_tenant, role: str) -> None:
    tenant = make_tenant()
    first = _get_key(client, tenant, "admin")
    assert first.status_code == 200, first.text
    again = _get_key(client, tenant, role)
    assert again.status_code == 200
    assert again.json() == first.json()
    body = first.json()
    assert body["algorithm"] == "Ed25519" and len(base64.b64decode(body["public_key"])) == 32
    assert "PRIVATE" not in str(body) and set(body) == {
        "tenant_id", "key_id", "algorithm", "public_key", "public_key_pem", "created_at"}


def test_other_tenants_key_answers_404(client, make_tenant) -> None:
    mine, theirs = make_tenant(), make_tenant()
    response = client.get(f"/api/v1/tenants/{theirs.id}/signing-key",
                          headers=mine.users["admin"].headers)
    assert response.status_code == 404
    assert _get_key(client, mine).json()["key_id"] != _get_key(client, theirs).json()["key_id"]


def test_private_key_is_encrypted_and_signs_for_the_public_key(
    client, make_tenant, settings: Settings
) -> None:
    tenant = make_tenant()
    public = _get_key(client, tenant).json()
    with db.tenant_session(tenant.id) as session:
        row = session.scalar(select(TenantSigningKey))
        private = signing.private_key(row, settings)
        raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        assert raw not in row.private_key_ciphertext
        signing.public_key(row).verify(private.sign(b"payload"), b"payload")
        assert base64.b64encode(row.public_key).decode() == public["public_key"]
        other_secret = settings.model_copy(update={"signing_key_secret": "x" * 40})
        with pytest.raises(signing.SigningKeyUnavailable):
            signing.private_key(row, other_secret)
        moved = TenantSigningKey(tenant_id=uuid.uuid4(), key_id=row.key_id,
                                 public_key=row.public_key, private_key_nonce=row.private_key_nonce,
                                 private_key_ciphertext=row.private_key_ciphertext)
        with pytest.raises(signing.SigningKeyUnavailable):  # bound to its tenant (GCM AAD)
            signing.private_key(moved, settings)
        created = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "signing_key.create")).all()
        assert [event.entity_id for event in created] == [row.id]


def test_rls_forced_and_app_role_cannot_delete_keys(
    client, make_tenant, app_conn: psycopg.Connection, owner_conn: psycopg.Connection
) -> None:
    tenant, other = make_tenant(), make_tenant()
    _get_key(client, tenant)
    forced = owner_conn.execute(
        "select relrowsecurity and relforcerowsecurity from pg_class c join pg_namespace n "
        "on n.oid = c.relnamespace where n.nspname = 'comp' and relname = 'tenant_signing_keys'"
    ).fetchone()
    assert forced == (True,)
    app_conn.execute("select set_config('app.tenant_id', %s, true)", (str(other.id),))
    seen = app_conn.execute("select count(*) from comp.tenant_signing_keys").fetchone()
    assert seen == (0,)  # the first tenant's key exists, but is invisible to the other
    app_conn.execute("select set_config('app.tenant_id', %s, true)", (str(tenant.id),))
    assert app_conn.execute("select count(*) from comp.tenant_signing_keys").fetchone() == (1,)
    with pytest.raises(errors.InsufficientPrivilege):
        app_conn.execute("delete from comp.tenant_signing_keys")
