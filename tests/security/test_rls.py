"""Tenant isolation in the database: RLS as the app role, and the ORM's fail-closed filter."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import errors
from sqlalchemy import select

from server.db import session as db
from server.db.session import TenantNotSet
from server.modules.tenants.models import User

TENANT_TABLES = [
    "mapping_presets",
    "upload_problems",
    "tenants",
    "users",
    "api_tokens",
    "input_catalog",
    "bonus_plans",
    "plan_inputs",
    "plan_steps",
    "bonus_pools",
    "uploads",
    "employee_rows",
    "plan_runs",
    "run_results",
    "run_totals",
    "audit_events",
    "tenant_signing_keys",
    "report_jobs",
    "tenant_data_keys",
]


def _set_tenant(conn: psycopg.Connection, tenant_id: uuid.UUID) -> None:
    conn.execute("select set_config('app.tenant_id', %s, true)", (str(tenant_id),))


def test_every_tenant_table_has_rls_enabled_and_forced(owner_conn: psycopg.Connection) -> None:
    rows = dict(
        owner_conn.execute(
            "select c.relname, c.relrowsecurity and c.relforcerowsecurity from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'comp' "
            "and c.relkind = 'r'"
        ).fetchall()
    )
    with_tenant_column = {
        r[0]
        for r in owner_conn.execute(
            "select table_name from information_schema.columns "
            "where table_schema = 'comp' and column_name = 'tenant_id'"
        ).fetchall()
    }
    # Every table that carries tenant_id (views excluded), whichever migration added it, and
    # the core tables known by name (in case one lost its tenant_id column).
    tenant_tables = ({t for t in with_tenant_column if t in rows}) | set(TENANT_TABLES)
    assert set(TENANT_TABLES) <= tenant_tables
    assert {t: rows[t] for t in tenant_tables} == dict.fromkeys(tenant_tables, True)


def test_app_role_is_unprivileged(app_conn: psycopg.Connection) -> None:
    row = app_conn.execute(
        "select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb from pg_roles "
        "where rolname = current_user"
    ).fetchone()
    assert row == (False, False, False, False)
    owner = app_conn.execute(
        "select tableowner from pg_tables where schemaname = 'comp' and tablename = 'users'"
    ).fetchone()
    assert owner == ("paysheet_owner",)


def test_select_as_tenant_a_sees_no_rows_of_b(make_tenant, app_conn) -> None:
    a, b = make_tenant(), make_tenant()
    _set_tenant(app_conn, a.id)
    tenants_seen = {r[0] for r in app_conn.execute("select tenant_id from comp.users")}
    assert tenants_seen == {a.id}
    assert app_conn.execute(
        "select count(*) from comp.users where tenant_id = %s", (b.id,)
    ).fetchone() == (0,)
    assert app_conn.execute("select id from comp.tenants").fetchall() == [(a.id,)]
    assert app_conn.execute(
        "select count(*) from comp.audit_events where tenant_id = %s", (b.id,)
    ).fetchone() == (0,)


def test_insert_of_another_tenants_row_fails(make_tenant, app_conn) -> None:
    a, b = make_tenant(), make_tenant()
    _set_tenant(app_conn, a.id)
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        app_conn.execute(
            "insert into comp.input_catalog (tenant_id, key, label, dtype) "
            "values (%s, 'aum', 'AUM', 'decimal')",
            (b.id,),
        )


def test_update_cannot_move_a_row_to_another_tenant(make_tenant, app_conn) -> None:
    a, b = make_tenant(), make_tenant()
    _set_tenant(app_conn, a.id)
    app_conn.execute(
        "insert into comp.input_catalog (tenant_id, key, label, dtype) "
        "values (%s, 'aum', 'AUM', 'decimal')",
        (a.id,),
    )
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        app_conn.execute("update comp.input_catalog set tenant_id = %s", (b.id,))


def test_child_row_cannot_reference_another_tenants_parent(make_tenant, owner_conn, app_conn):
    a, b = make_tenant(), make_tenant()
    plan_b = owner_conn.execute(
        "insert into comp.bonus_plans (tenant_id, name, version) values (%s, 'B plan', 1) "
        "returning id",
        (b.id,),
    ).fetchone()[0]
    _set_tenant(app_conn, a.id)
    with pytest.raises(errors.ForeignKeyViolation):
        app_conn.execute(
            "insert into comp.plan_steps (tenant_id, plan_id, step_order, name, expr) "
            "values (%s, %s, 1, 'x', '1')",
            (a.id, plan_b),
        )


def test_queries_fail_when_no_tenant_is_set(make_tenant, database) -> None:
    make_tenant()
    with (
        psycopg.connect(database.app) as conn,
        pytest.raises(errors.UndefinedObject, match=r"app\.tenant_id"),
    ):
        conn.execute("select count(*) from comp.users")
    with psycopg.connect(database.app) as conn:
        conn.execute("select set_config('app.tenant_id', '', false)")
        with pytest.raises(errors.InvalidTextRepresentation):
            conn.execute("select count(*) from comp.users")


def test_app_role_cannot_disable_rls(app_conn) -> None:
    with pytest.raises(errors.InsufficientPrivilege, match="must be owner"):
        app_conn.execute("alter table comp.users disable row level security")
    app_conn.rollback()
    with pytest.raises(errors.InsufficientPrivilege, match="must be owner"):
        app_conn.execute("alter table comp.users no force row level security")


def test_row_security_off_does_not_reveal_rows(make_tenant, app_conn) -> None:
    a = make_tenant()
    _set_tenant(app_conn, a.id)
    app_conn.execute("set row_security = off")
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        app_conn.execute("select count(*) from comp.users")


def test_app_role_cannot_call_set_role_to_owner(app_conn) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        app_conn.execute("set role paysheet_owner")


def test_orm_filters_by_the_session_tenant(make_tenant) -> None:
    a, b = make_tenant(), make_tenant()
    with db.tenant_session(a.id) as session:
        users = session.scalars(select(User)).all()
        assert {u.tenant_id for u in users} == {a.id}
        assert session.get(User, b.users["admin"].id) is None


def test_orm_refuses_tenant_queries_without_tenant(make_tenant) -> None:
    make_tenant()
    with db.system_session() as session, pytest.raises(TenantNotSet):
        session.scalars(select(User)).all()


def test_orm_refuses_writing_another_tenants_row(make_tenant) -> None:
    a, b = make_tenant(), make_tenant()
    with pytest.raises(TenantNotSet, match="another tenant"), db.tenant_session(a.id) as s:
        s.add(User(tenant_id=b.id, email="x@y.example.com", role="readonly"))
        s.flush()
