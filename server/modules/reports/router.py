"""Routes of the reports module (thin: parse, call the service, shape the response)."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from server.errors import Conflict
from server.modules.audit.service import record_event
from server.modules.auth.dependencies import DbSession, Principal, require, same_tenant
from server.modules.reports import deltas, history, jobs, pool, service, signing
from server.modules.reports.bundle import safe_member_name, sha256
from server.modules.reports.schemas import (
    JobOut,
    SigningKeyOut,
    StatementRequest,
    StatementsJobRequest,
)
from server.settings import Settings

router = APIRouter(tags=["reports"])
ZIP = "application/zip"


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _file(payload: bytes, media_type: str, name: str) -> Response:
    return Response(payload, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/tenants/{tenantId}/signing-key", response_model=SigningKeyOut)
def get_signing_key(
    tenantId: uuid.UUID,
    request: Request,
    db: DbSession,
    principal: Principal = Depends(require("reports.signing_key.read")),
) -> SigningKeyOut:
    """The tenant's public Ed25519 key that signs export bundles (created on first use)."""
    same_tenant(tenantId, principal)
    row = signing.active_key(db, _settings(request), principal)
    return SigningKeyOut(**signing.public_key_document(row))


@router.post("/reports/individual-statement", response_class=Response)
def individual_statement(
    body: StatementRequest, request: Request, db: DbSession,
    principal: Principal = Depends(require("reports.read")),
) -> Response:
    """One employee's statement (pdf, xlsx or html); managers only for their teams."""
    data = service.load_run(db, _settings(request), body.run_id, with_rows=False)
    service.ensure_visible(principal, data.frame, body.employee_ref)
    payload = service.individual_statement(data.plan, data.frame, body.employee_ref, data.info,
                                           service.branding(db, principal.tenant_id),
                                           body.format)
    name = f"statement-{safe_member_name(body.employee_ref)}.{body.format}"
    return _file(payload, service.MEDIA_TYPES[body.format], name)


@router.post("/runs/{run_id}/export", response_class=Response)
def export_run(
    run_id: uuid.UUID, request: Request, db: DbSession,
    principal: Principal = Depends(require("runs.export")),
) -> Response:
    """The signed export bundle of a finalized run (audited)."""
    settings = _settings(request)
    data = service.load_run(db, settings, run_id)
    if not data.info.finalized:
        raise Conflict(f"run {run_id} is {data.info.status}: only finalized runs are exported")
    key = signing.active_key(db, settings, principal)
    bundle = service.export_bundle(
        data.plan, data.info, str(principal.tenant_id), data.rows, data.frame,
        service.run_audit_events(db, run_id), service.branding(db, principal.tenant_id),
        signing.private_key(key, settings), processes=settings.worker_processes)
    record_event(db, principal_or_actor_id=principal, action="run.export", entity="plan_run",
                 entity_id=run_id, after={"sha256": sha256(bundle), "bytes": len(bundle),
                                          "key_id": key.key_id})
    return _file(bundle, ZIP, f"run-{run_id}-export.zip")


@router.get("/reports/pool-vs-target", response_model=None)
def pool_vs_target(
    request: Request, db: DbSession, run_id: uuid.UUID,
    format: Literal["json", "xlsx", "pdf", "html"] = "json",
    target_step: str = Query(pool.TARGET_STEP, max_length=100),
    principal: Principal = Depends(require("reports.read")),
) -> Response | dict:
    """Per pool and fund: pool, sum of targets, allocated, variance, scale factor."""
    try:
        report = service.pool_report(db, _settings(request), run_id, target_step)
    except ValueError as error:
        raise Conflict(str(error)) from None
    lines, plan = report.lines, report.plan
    if format == "json":
        return {"run_id": str(run_id), "lines": pool.pool_json(lines)}
    if format == "xlsx":
        return _file(pool.pool_xlsx(lines, f"Pool vs target: {plan.document.name}"),
                     service.MEDIA_TYPES["xlsx"], f"pool-vs-target-{run_id}.xlsx")
    brand = service.branding(db, principal.tenant_id)
    args = (lines, brand, plan.document.name, str(run_id), report.info.status_label)
    if format == "html":
        return Response(pool.pool_html(*args), media_type=service.MEDIA_TYPES["html"])
    return _file(pool.pool_pdf(*args), service.MEDIA_TYPES["pdf"], f"pool-vs-target-{run_id}.pdf")


@router.get("/reports/history", response_model=None)
def payout_history(
    request: Request, db: DbSession,
    group_by: Literal["fund", "team", "role"] = "fund",
    since: str | None = Query(None, alias="from", pattern=r"^\d{4}-\d{2}-\d{2}$"),
    until: str | None = Query(None, alias="to", pattern=r"^\d{4}-\d{2}-\d{2}$"),
    format: Literal["json", "xlsx", "pdf"] = "json",
    principal: Principal = Depends(require("reports.read")),
) -> Response | dict:
    """Totals per plan period and group over finalized runs, with a trend chart."""
    result = service.history_of(db, _settings(request), group_by, since, until)
    if format == "json":
        return history.history_json(result)
    if format == "xlsx":
        return _file(history.history_xlsx(result), service.MEDIA_TYPES["xlsx"],
                     f"payout-history-{group_by}.xlsx")
    return _file(history.history_pdf(result, service.branding(db, principal.tenant_id)),
                 service.MEDIA_TYPES["pdf"], f"payout-history-{group_by}.pdf")


@router.get("/reports/scenario-deltas", response_class=Response)
def scenario_deltas(
    request: Request, db: DbSession, run_id: uuid.UUID, other_run_id: uuid.UUID,
    format: Literal["xlsx", "pdf"] = "xlsx",
    principal: Principal = Depends(require("reports.read")),
) -> Response:
    """`other_run_id` (the scenario) against `run_id` (the base), per employee and in total;
    managers see only their teams' employees."""
    settings = _settings(request)
    base, scenario = (service.load_run(db, settings, run_id),
                      service.load_run(db, settings, other_run_id))
    visible = service.visible_refs(principal, base.frame)
    if visible is not None:
        base_rows = [r for r in base.rows if r["employee_ref"] in visible]
        scenario_rows = [r for r in scenario.rows if r["employee_ref"] in visible]
    else:
        base_rows, scenario_rows = base.rows, scenario.rows
    comparison = deltas.compare(base_rows, scenario_rows, base.plan.payout,
                                base.info.scenario_name or f"run {run_id}",
                                scenario.info.scenario_name or f"run {other_run_id}",
                                scenario.plan.payout)
    if format == "xlsx":
        return _file(deltas.deltas_xlsx(comparison), service.MEDIA_TYPES["xlsx"],
                     f"scenario-deltas-{run_id}-{other_run_id}.xlsx")
    return _file(deltas.deltas_pdf(comparison, service.branding(db, principal.tenant_id)),
                 service.MEDIA_TYPES["pdf"], f"scenario-deltas-{run_id}-{other_run_id}.pdf")


@router.post("/runs/{run_id}/statements", response_model=JobOut, status_code=202)
def bulk_statements(
    run_id: uuid.UUID, body: StatementsJobRequest, request: Request,
    principal: Principal = Depends(require("reports.read")),
) -> JobOut:
    """Queue statements for everyone, a list or a team (managers: their teams only); poll
    `GET /reports/jobs/{jobId}`, then download the zip."""
    job = jobs.create_statements_job(principal, _settings(request), run_id, body.employee_refs,
                                     body.team, body.format)
    return JobOut.model_validate(job)


@router.get("/reports/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: uuid.UUID, db: DbSession,
            principal: Principal = Depends(require("reports.read"))) -> JobOut:
    """Status and progress of one of the caller's jobs."""
    return JobOut.model_validate(jobs.get_job(db, principal, job_id))


@router.get("/reports/jobs/{job_id}/download", response_class=Response)
def download_job(job_id: uuid.UUID, db: DbSession,
                 principal: Principal = Depends(require("reports.read"))) -> Response:
    """The finished job's zip (409 until it is done)."""
    job = jobs.get_job(db, principal, job_id)
    return _file(jobs.job_archive(job), ZIP, f"statements-{job.run_id}.zip")
