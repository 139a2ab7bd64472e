"""Routes of the reports module (thin: parse, call the service, shape the response)."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response, WebSocket
from fastapi.responses import FileResponse

from server.errors import Conflict
from server.modules.auth.dependencies import DbSession, Principal, require, same_tenant
from server.modules.reports import (
    delivery,
    deltas,
    history,
    job_progress,
    jobs,
    pool,
    service,
    signing,
)
from server.modules.reports import export_job as export_jobs
from server.modules.reports.bundle import safe_member_name
from server.modules.reports.schemas import (
    JobOut,
    SigningKeyOut,
    StatementRequest,
    StatementsJobRequest,
)
from server.settings import Settings

router = APIRouter(tags=["reports"])
API_PREFIX = "/api/v1"
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


@router.post("/runs/{run_id}/export", response_model=JobOut, status_code=202)
def export_run(
    run_id: uuid.UUID, request: Request, response: Response,
    principal: Principal = Depends(require("runs.export")),
) -> JobOut:
    """Queue the signed export bundle of a finalized run (409 otherwise; audited). Follow
    `Location` (or the WebSocket `…/events`) until `status` is done, then download."""
    settings = _settings(request)
    job = export_jobs.create_export_job(
        principal, settings, run_id,
        lambda tenant_id, job_id: jobs.queue_job(settings, "export", tenant_id, job_id))
    response.headers["Location"] = f"{API_PREFIX}/reports/jobs/{job.id}"
    return JobOut.model_validate(job)


@router.post("/runs/{run_id}/deliveries", response_model=JobOut, status_code=202)
def deliver_statements(
    run_id: uuid.UUID, request: Request, response: Response,
    principal: Principal = Depends(require("reports.read")),
) -> JobOut:
    """E-mail every manager their teams' statements of a finalized run (admin, hr,
    finance; needs SMTP_HOST); each e-mail is audited as `run.delivery`."""
    job = service.create_delivery_job(principal, _settings(request), run_id)
    response.headers["Location"] = f"{API_PREFIX}/reports/jobs/{job.id}"
    return JobOut.model_validate(job)


@router.get("/reports/deliveries/{link_id}/download", response_class=FileResponse)
def download_delivery(link_id: uuid.UUID, db: DbSession,
                      principal: Principal = Depends(require("reports.read"))) -> FileResponse:
    """The zip a delivery e-mail links to: the statements of the manager's teams, for that
    manager only (anyone else: 404), until the link expires (410). Audited."""
    return FileResponse(delivery.link_download(db, principal, link_id), media_type=ZIP,
                        filename=f"my-team-statements-{link_id}.zip")


@router.get("/reports/pool-vs-target", response_model=None)
def pool_vs_target(
    request: Request, db: DbSession, run_id: uuid.UUID,
    format: Literal["json", "xlsx", "pdf", "html"] = "json",
    target_step: str = Query(pool.TARGET_STEP, max_length=100),
    principal: Principal = Depends(require("reports.read")),
) -> Response | dict:
    """Per pool and fund: pool, sum of targets, allocated, variance, scale factor (managers:
    groups of fewer than 5 employees left out, docs/operations.md "Access rules")."""
    try:
        report = service.pool_report(db, _settings(request), run_id, target_step)
    except ValueError as error:
        raise Conflict(str(error)) from None
    lines, plan = service.large_groups(principal, report.lines), report.plan
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
    """Totals per plan period and group over finalized runs, with a trend chart (managers:
    groups of fewer than 5 employees left out)."""
    result = service.large_history(principal, service.history_of(
        db, _settings(request), group_by, since, until))
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
    run_id: uuid.UUID, body: StatementsJobRequest, request: Request, response: Response,
    principal: Principal = Depends(require("reports.read")),
) -> JobOut:
    """Queue statements for everyone, a list or a team (managers: their teams only); poll
    `GET /reports/jobs/{jobId}` (the `Location`), then download the zip."""
    job = jobs.create_statements_job(principal, _settings(request), run_id, body.employee_refs,
                                     body.team, body.format)
    response.headers["Location"] = f"{API_PREFIX}/reports/jobs/{job.id}"
    return JobOut.model_validate(job)


@router.get("/reports/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: uuid.UUID, db: DbSession,
            principal: Principal = Depends(require("reports.read"))) -> JobOut:
    """Status and progress of one of the caller's jobs."""
    return JobOut.model_validate(jobs.get_job(db, principal, job_id))


@router.post("/reports/jobs/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: uuid.UUID, db: DbSession,
               principal: Principal = Depends(require("reports.read"))) -> JobOut:
    """Cancel a queued or running job (409 once it ended); the worker stops after its
    current chunk of statements."""
    return JobOut.model_validate(jobs.cancel_job(db, principal, job_id))


@router.get("/reports/jobs/{job_id}/download", response_class=FileResponse)
def download_job(job_id: uuid.UUID, db: DbSession,
                 principal: Principal = Depends(require("reports.read"))) -> FileResponse:
    """The finished job's zip (409 until it is done), checked against its SHA-256."""
    job = jobs.get_job(db, principal, job_id)
    name = (f"run-{job.run_id}-export.zip" if job.kind == "export"
            else f"statements-{job.run_id}.zip")
    return FileResponse(jobs.job_file(job), media_type=ZIP, filename=name)


@router.websocket("/reports/jobs/{job_id}/events")
async def job_events(websocket: WebSocket, job_id: uuid.UUID) -> None:
    """Progress of one of the caller's jobs: `{status, progress, error}` whenever it
    changes, closing (1000) after a final status. Authenticate with `?token=` or a first
    message `{"token": "..."}`; closes with 4401 (bad token), 4403 (role), 4404 (not your
    job). Leaving does not stop the job: it finishes, or is cancelled through the API."""
    await job_progress.stream(websocket, job_id)
