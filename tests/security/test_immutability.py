"""Immutability enforced by the database, whoever connects: locked plans, audit, finalized runs."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import errors

IMMUTABLE = "PS409"


def _set_tenant(conn: psycopg.Connection, tenant_id: uuid.UUID) -> None:
    conn.execute("select set_config('app.tenant_id', %s, true)", (str(tenant_id),))


def _locked_plan(owner_conn: psycopg.Connection, tenant_id: uuid.UUID) -> tuple[uuid.UUID, ...]:
    """A plan with one step, then locked: returns (plan id, step id)."""
    plan_id = owner_conn.execute(
        "insert into comp.bonus_plans (tenant_id, name, version, document) "
        "values (%s, %s, 1, '{}') returning id",
        (tenant_id, f"plan {uuid.uuid4()}"),
    ).fetchone()[0]
    step_id = owner_conn.execute(
        "insert into comp.plan_steps (tenant_id, plan_id, step_order, name, expr) "
        "values (%s, %s, 1, 'bonus', '1000') returning id",
        (tenant_id, plan_id),
    ).fetchone()[0]
    owner_conn.execute(
        "update comp.bonus_plans set status = 'locked', locked_at = now(), plan_hash = 'h' "
        "where id = %s",
        (plan_id,),
    )
    return plan_id, step_id


@pytest.mark.parametrize(
    "statement",
    [
        "update comp.plan_steps set expr = '2000' where id = %(step)s",
        "delete from comp.plan_steps where id = %(step)s",
        "insert into comp.plan_steps (tenant_id, plan_id, step_order, name, expr) "
        "values (%(tenant)s, %(plan)s, 2, 'extra', '1')",
        "update comp.bonus_plans set document = '{\"steps\": []}' where id = %(plan)s",
        "update comp.bonus_plans set plan_hash = 'other' where id = %(plan)s",
        "update comp.bonus_plans set status = 'draft' where id = %(plan)s",
        "delete from comp.bonus_plans where id = %(plan)s",
    ],
)
def test_locked_plan_cannot_change_as_app_role(statement, make_tenant, owner_conn, app_conn):
    tenant = make_tenant()
    plan_id, step_id = _locked_plan(owner_conn, tenant.id)
    _set_tenant(app_conn, tenant.id)
    with pytest.raises(psycopg.Error) as caught:
        app_conn.execute(statement, {"step": step_id, "plan": plan_id, "tenant": tenant.id})
    assert caught.value.sqlstate == IMMUTABLE


def test_locked_plan_step_cannot_change_even_as_owner(make_tenant, owner_conn) -> None:
    tenant = make_tenant()
    _, step_id = _locked_plan(owner_conn, tenant.id)
    with pytest.raises(psycopg.Error, match="locked") as caught:
        owner_conn.execute("update comp.plan_steps set expr = '2' where id = %s", (step_id,))
    assert caught.value.sqlstate == IMMUTABLE


def test_locked_plan_may_only_be_archived(make_tenant, owner_conn, app_conn) -> None:
    tenant = make_tenant()
    plan_id, _ = _locked_plan(owner_conn, tenant.id)
    _set_tenant(app_conn, tenant.id)
    app_conn.execute("update comp.bonus_plans set status = 'archived' where id = %s", (plan_id,))
    assert app_conn.execute(
        "select status from comp.bonus_plans where id = %s", (plan_id,)
    ).fetchone() == ("archived",)
    with pytest.raises(psycopg.Error) as caught:
        app_conn.execute("update comp.bonus_plans set status = 'locked' where id = %s", (plan_id,))
    assert caught.value.sqlstate == IMMUTABLE


def test_draft_plan_steps_change_freely(make_tenant, owner_conn, app_conn) -> None:
    tenant = make_tenant()
    plan_id = owner_conn.execute(
        "insert into comp.bonus_plans (tenant_id, name, version) values (%s, 'draft', 1) "
        "returning id",
        (tenant.id,),
    ).fetchone()[0]
    _set_tenant(app_conn, tenant.id)
    app_conn.execute(
        "insert into comp.plan_steps (tenant_id, plan_id, step_order, name, expr) "
        "values (%s, %s, 1, 'a', '1'), (%s, %s, 2, 'b', '2')",
        (tenant.id, plan_id, tenant.id, plan_id),
    )
    # Reordering swaps step_order: the unique constraint is deferred to commit.
    app_conn.execute(
        "update comp.plan_steps set step_order = 3 - step_order where plan_id = %s", (plan_id,)
    )
    assert app_conn.execute(
        "select name from comp.plan_steps where plan_id = %s order by step_order", (plan_id,)
    ).fetchall() == [("b",), ("a",)]


def test_audit_events_are_append_only(make_tenant, owner_conn, app_conn) -> None:
    tenant = make_tenant()
    _set_tenant(app_conn, tenant.id)
    event_id = app_conn.execute("select min(id) from comp.audit_events").fetchone()[0]
    assert event_id is not None
    for statement in (
        "update comp.audit_events set action = 'x' where id = %s",
        "delete from comp.audit_events where id = %s",
    ):
        with pytest.raises(errors.InsufficientPrivilege):
            app_conn.execute(statement, (event_id,))
        app_conn.rollback()
        _set_tenant(app_conn, tenant.id)
        with pytest.raises(psycopg.Error, match="append-only") as caught:
            owner_conn.execute(statement, (event_id,))
        assert caught.value.sqlstate == IMMUTABLE
    with pytest.raises(psycopg.Error, match="append-only"):
        owner_conn.execute("truncate comp.audit_events")


def test_finalized_run_results_are_immutable(make_tenant, owner_conn, app_conn) -> None:
    tenant = make_tenant()
    plan_id, _ = _locked_plan(owner_conn, tenant.id)
    run_id = owner_conn.execute(
        "insert into comp.plan_runs (tenant_id, plan_id, snapshot_hash, status) "
        "values (%s, %s, 's', 'draft') returning id",
        (tenant.id, plan_id),
    ).fetchone()[0]
    owner_conn.execute(
        'insert into comp.run_results (run_id, tenant_id, employee_ref, "values") '
        "values (%s, %s, 'E1', '{\"bonus\": \"1000.0000000000\"}')",
        (run_id, tenant.id),
    )
    owner_conn.execute(
        "insert into comp.run_totals (run_id, tenant_id) values (%s, %s)", (run_id, tenant.id)
    )
    owner_conn.execute("update comp.plan_runs set status = 'finalized' where id = %s", (run_id,))
    _set_tenant(app_conn, tenant.id)
    assert app_conn.execute(
        "select step_name, value from comp.run_step_results where run_id = %s", (run_id,)
    ).fetchall() == [("bonus", "1000.0000000000")]
    for statement in (
        "update comp.run_results set \"values\" = '{}' where run_id = %(run)s",
        "delete from comp.run_results where run_id = %(run)s",
        'insert into comp.run_results (run_id, tenant_id, employee_ref, "values") '
        "values (%(run)s, %(tenant)s, 'E2', '{}')",
        "update comp.run_totals set totals = '{\"x\": 1}' where run_id = %(run)s",
        "update comp.plan_runs set status = 'draft' where id = %(run)s",
        "delete from comp.plan_runs where id = %(run)s",
    ):
        with pytest.raises(psycopg.Error, match="finalized") as caught:
            app_conn.execute(statement, {"run": run_id, "tenant": tenant.id})
        assert caught.value.sqlstate == IMMUTABLE
        app_conn.rollback()
        _set_tenant(app_conn, tenant.id)
