"""Routes: /fund-navs, /deferrals (schedules, liability, payroll, leavers, ledger check),
/vesting-runs, /malus and /clawbacks (docs/deferrals.md). Another tenant's ids answer 404."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from server.db import session as db
from server.errors import NotFound, ProblemError
from server.jsonbody import ExactNumberRoute
from server.modules.auth.dependencies import DbSession, Principal, require
from server.modules.deferrals import actions, ledger, service, vesting
from server.modules.deferrals.schemas import (
    ActionDecision,
    Decision,
    LeaverIn,
    NavsIn,
    ProposalIn,
    VestingRunIn,
)
from server.modules.runs import service as runs

router = APIRouter(tags=["deferrals"], route_class=ExactNumberRoute)
MAX_NAV_BYTES = 16 * 1024 * 1024


def _csv(body: bytes, name: str) -> Response:
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# -- NAVs ------------------------------------------------------------------------------------
@router.post("/fund-navs", status_code=201)
def add_navs(body: NavsIn, db_session: DbSession,
             principal: Principal = Depends(require("fund_navs.write"))) -> dict[str, int]:
    """Add fund NAVs (one per fund and date; a stored NAV is never changed)."""
    rows = [nav.model_dump() for nav in body.navs]
    return {"added": service.add_navs(db_session, principal, rows)}


@router.post("/fund-navs/upload", status_code=201)
async def upload_navs(file: UploadFile = File(..., description="CSV: fund_ref,nav_date,nav,"
                                                               "currency"),
                      principal: Principal = Depends(require("fund_navs.write"))
                      ) -> dict[str, int]:
    payload = await file.read(MAX_NAV_BYTES + 1)
    if len(payload) > MAX_NAV_BYTES:
        raise ProblemError(413, "Content Too Large", "NAV file is over 16 MB")

    def store() -> dict[str, int]:
        rows = service.parse_nav_csv(payload)
        with db.tenant_session(principal.tenant_id) as session:
            return {"added": service.add_navs(session, principal, rows)}

    return await run_in_threadpool(store)


@router.get("/fund-navs")
def list_navs(db_session: DbSession, fund_ref: str | None = Query(None, max_length=200),
              _: Principal = Depends(require("deferrals.read"))) -> list[dict[str, Any]]:
    return [{"fund_ref": n.fund_ref, "nav_date": n.nav_date, "nav": format(n.nav, "f"),
             "currency": n.currency, "source": n.source}
            for n in service.list_navs(db_session, fund_ref)]


# -- ledger reports ----------------------------------------------------------------------------
@router.get("/deferrals")
def list_awards(db_session: DbSession, run_id: uuid.UUID | None = None,
                employee_ref: str | None = Query(None, max_length=200),
                _: Principal = Depends(require("deferrals.read"))) -> list[dict[str, Any]]:
    """Deferred awards (filter by run or employee)."""
    return [{"id": a.id, "run_id": a.run_id, "employee_ref": a.employee_ref,
             "award_date": a.award_date, "currency": a.currency,
             "variable_pay": format(a.variable_pay, "f"), "deferred": format(a.deferred, "f")}
            for a in service.awards_of(db_session, run_id, employee_ref)]


@router.get("/deferrals/employees/{employee_ref}/schedule")
def schedule(employee_ref: str, db_session: DbSession,
             _: Principal = Depends(require("deferrals.read"))) -> dict[str, Any]:
    """The employee's deferral schedule: each tranche's balances and every ledger entry."""
    return service.schedule(db_session, employee_ref)


@router.get("/deferrals/liability")
def liability(db_session: DbSession, as_of: date | None = None,
              _: Principal = Depends(require("deferrals.read"))) -> dict[str, Any]:
    """Outstanding deferred pay by fund, vesting year and instrument, at the latest NAV."""
    return service.liability(db_session, as_of or datetime.now(UTC).date())


@router.get("/deferrals/verify")
def verify(db_session: DbSession,
           _: Principal = Depends(require("audit.read"))) -> dict[str, Any]:
    """Every ledger batch hashes to what the audit chain recorded."""
    return ledger.verify(db_session).__dict__


@router.get("/deferrals/payroll/{run_id}")
def payroll(run_id: uuid.UUID, db_session: DbSession, format: str = Query("json",
            pattern="^(json|csv)$"), _: Principal = Depends(require("deferrals.read"))) -> Any:
    """Payroll file of a plan run, an adjustment run (deltas only) or a vesting run: cash
    now, deferred, vested cash and units, by currency."""
    lines = _payroll_lines(db_session, run_id)
    if format == "csv":
        return _csv(service.payroll_csv(lines), f"payroll-{run_id}.csv")
    return {"run_id": run_id, "lines": [{k: (service.r10_text(v) if k not in (
        "employee_ref", "currency", "fund_ref") else v) for k, v in line.items()}
        for line in lines], "totals": service.payroll_totals(lines)}


def _payroll_lines(db_session: Any, run_id: uuid.UUID) -> list[dict[str, Any]]:
    from server.modules.adjustments import service as adjustments

    try:
        return vesting.payroll(vesting.get(db_session, run_id))
    except NotFound:
        pass
    runs.get_run(db_session, run_id)
    try:
        return adjustments.payroll(db_session, run_id)
    except NotFound:
        return service.run_payroll(db_session, run_id)


@router.post("/deferrals/leavers", status_code=201)
def leaver(body: LeaverIn, db_session: DbSession,
           principal: Principal = Depends(require("deferrals.propose"))) -> dict[str, Any]:
    """Record a leaver: the awards' leaver treatment applies at once (audited)."""
    return actions.leaver(db_session, principal, body.employee_ref, body.exit_date,
                          body.leaver_kind, body.reason, body.evidence)


# -- vesting runs ------------------------------------------------------------------------------
@router.post("/vesting-runs", status_code=201)
def create_vesting_run(body: VestingRunIn, db_session: DbSession,
                       principal: Principal = Depends(require("vesting.create"))
                       ) -> dict[str, Any]:
    return vesting.out(vesting.create(db_session, principal, body.vest_date))


@router.get("/vesting-runs")
def list_vesting_runs(db_session: DbSession,
                      _: Principal = Depends(require("deferrals.read"))) -> list[dict[str, Any]]:
    return [vesting.out(run) for run in vesting.list_runs(db_session)]


@router.get("/vesting-runs/{run_id}")
def get_vesting_run(run_id: uuid.UUID, db_session: DbSession,
                    _: Principal = Depends(require("deferrals.read"))) -> dict[str, Any]:
    return vesting.out(vesting.get(db_session, run_id))


@router.get("/vesting-runs/{run_id}/statements/{employee_ref}")
def vesting_statement(run_id: uuid.UUID, employee_ref: str, db_session: DbSession,
                      _: Principal = Depends(require("deferrals.read"))) -> dict[str, Any]:
    """The employee's vesting statement (what vests, at which NAV, retained until when)."""
    return vesting.statement(vesting.get(db_session, run_id), employee_ref)


@router.post("/vesting-runs/{run_id}/transition")
def transition_vesting_run(run_id: uuid.UUID, body: Decision, db_session: DbSession,
                           principal: Principal = Depends(require("runs.read"))
                           ) -> dict[str, Any]:
    """hr_approve, finance_approve, finalize (writes the vest entries) or reject."""
    return vesting.out(vesting.transition(db_session, principal, run_id, body.action,
                                          body.comment))


# -- malus and clawback --------------------------------------------------------------------
def _register(kind: str, path: str) -> None:
    @router.post(path, status_code=201, name=f"propose_{kind}")
    def propose(body: ProposalIn, db_session: DbSession,
                principal: Principal = Depends(require("deferrals.propose"))) -> dict[str, Any]:
        return actions.action_out(actions.propose(
            db_session, principal, kind, body.award_id, body.tranche, body.fraction,
            body.reason, body.evidence, body.effective_date))

    @router.get(path, name=f"list_{kind}")
    def list_all(db_session: DbSession,
                 _: Principal = Depends(require("deferrals.read"))) -> list[dict[str, Any]]:
        return [actions.action_out(a) for a in actions.list_actions(db_session, kind)]

    @router.get(path + "/{action_id}", name=f"get_{kind}")
    def get_one(action_id: uuid.UUID, db_session: DbSession,
                _: Principal = Depends(require("deferrals.read"))) -> dict[str, Any]:
        return actions.action_out(actions.get(db_session, action_id, kind))

    @router.post(path + "/{action_id}/decision", name=f"decide_{kind}")
    def decide(action_id: uuid.UUID, body: ActionDecision, db_session: DbSession,
               principal: Principal = Depends(require("deferrals.decide"))) -> dict[str, Any]:
        """A second person (hr/admin) and finance approve; either may reject with a reason."""
        return actions.action_out(actions.decide(db_session, principal, kind, action_id,
                                                 body.approve, body.comment))


_register("malus", "/malus")
_register("clawback", "/clawbacks")
