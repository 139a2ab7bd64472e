"""get_db commits before the response is sent, and database refusals become problem+json 409."""

from __future__ import annotations

import uuid

from fastapi import Depends
from fastapi.testclient import TestClient
from sqlalchemy import text

from server.app import create_app
from server.modules.auth.dependencies import DbSession, Principal, require


def _app_with_probe_routes(settings):
    app = create_app(settings)

    @app.post("/api/v1/_probe/steps/{plan_id}")
    def duplicate_steps(
        plan_id: uuid.UUID, db: DbSession, principal: Principal = Depends(require("plans.write"))
    ) -> dict:
        # Two steps with one step_order: the deferred unique constraint fails at COMMIT.
        for name in ("a", "b"):
            db.execute(
                text(
                    "insert into comp.plan_steps (tenant_id, plan_id, step_order, name, "
                    "expr) values (:t, :p, 1, :n, '1')"
                ),
                {"t": principal.tenant_id, "p": plan_id, "n": name},
            )
        return {"written": 2}

    @app.patch("/api/v1/_probe/plans/{plan_id}")
    def touch_plan(
        plan_id: uuid.UUID, db: DbSession, principal: Principal = Depends(require("plans.write"))
    ) -> dict:
        db.execute(text("update comp.bonus_plans set notes = 'x' where id = :p"), {"p": plan_id})
        return {"ok": True}

    return app


def _plan(owner_conn, tenant_id, locked: bool) -> uuid.UUID:
    plan_id = owner_conn.execute(
        "insert into comp.bonus_plans (tenant_id, name, version) values (%s, %s, 1) returning id",
        (tenant_id, f"p-{uuid.uuid4()}"),
    ).fetchone()[0]
    if locked:
        owner_conn.execute(
            "update comp.bonus_plans set status = 'locked', locked_at = now(), "
            "plan_hash = 'h' where id = %s",
            (plan_id,),
        )
    return plan_id


def test_commit_failure_is_a_409_not_a_silent_200(settings, make_tenant, owner_conn) -> None:
    tenant = make_tenant()
    plan_id = _plan(owner_conn, tenant.id, locked=False)
    with TestClient(_app_with_probe_routes(settings)) as local:
        response = local.post(f"/api/v1/_probe/steps/{plan_id}", headers=tenant.users["hr"].headers)
    assert response.status_code == 409
    assert "plan_steps_order_key" in response.json()["detail"]
    assert owner_conn.execute(
        "select count(*) from comp.plan_steps where plan_id = %s", (plan_id,)
    ).fetchone() == (0,)


def test_trigger_refusal_on_a_locked_plan_is_409(settings, make_tenant, owner_conn) -> None:
    tenant = make_tenant()
    plan_id = _plan(owner_conn, tenant.id, locked=True)
    with TestClient(_app_with_probe_routes(settings)) as local:
        response = local.patch(
            f"/api/v1/_probe/plans/{plan_id}", headers=tenant.users["hr"].headers
        )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "locked" in response.json()["detail"]
