"""Bulk statement jobs: queued on the worker, rendered on a process pool, zipped to disk.

`create_statements_job` picks the employees (all, a list, or one team; managers only ever
get their own teams' employees), records the job in its own committed transaction, audits it
on the run and queues it. The worker task (`reports.statements`, bound to
`run_statements_job` in server/worker/tasks.py) computes every tape from one evaluation,
renders the statements on `settings.worker_processes` processes, reports progress after every
chunk, and writes the zip to `<data_dir>/reports/<tenant>/<job>.zip` (its SHA-256 is recorded
and checked on download).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.session import tenant_session
from server.errors import Conflict, NotFound, UnprocessableEntity
from server.modules.audit.service import record_event
from server.modules.auth.permissions import Role
from server.modules.reports import export_job as export_jobs
from server.modules.reports import service
from server.modules.reports.bulk import Format, render_statements, statements_zip
from server.modules.reports.metrics import timed_export
from server.modules.reports.models import ReportJob
from server.modules.reports.tapes import explain_all
from server.principal import Principal
from server.settings import Settings
from server.worker import queue

DELIVERY_LINK = "delivery_link"  # report_jobs.params key of a delivery link (delivery.py)
TASK_OF = {"statements": queue.RENDER_STATEMENTS, "export": queue.EXPORT_BUNDLE,
           "delivery": queue.DELIVER_STATEMENTS}


def queue_job(settings: Settings, kind: str, tenant_id: str | uuid.UUID,
              job_id: str | uuid.UUID) -> None:
    """Queue the task of a job of `kind` (statements, export, delivery)."""
    queue.get_queue(settings).enqueue(TASK_OF[kind], uuid.UUID(str(tenant_id)),
                                      uuid.UUID(str(job_id)))


def recover_report_jobs(settings: Settings) -> list[uuid.UUID]:
    """Queue again every job left `running` by a dead worker (periodic, every minute)."""
    return export_jobs.recover_jobs(
        settings, lambda kind, tenant_id, job_id: queue_job(settings, kind, tenant_id, job_id))


def _chosen_refs(principal: Principal, frame: pl.DataFrame, employee_refs: Sequence[str] | None,
                 team: str | None) -> list[str]:
    everyone = [str(ref) for ref in frame["employee_ref"].to_list()]
    visible = service.visible_refs(principal, frame)
    allowed = set(everyone) if visible is None else visible
    if employee_refs:
        unknown = [ref for ref in employee_refs if ref not in allowed]
        if unknown:
            raise NotFound("employee", f"employee '{unknown[0]}' not found in this run")
        return sorted(set(employee_refs))
    chosen = [ref for ref in everyone if ref in allowed]
    if team is not None:
        if service.TEAM_INPUT not in frame.columns:
            raise UnprocessableEntity([{"loc": ["body", "team"],
                                        "msg": "the plan has no 'team' input"}])
        members = set(frame.filter(pl.col(service.TEAM_INPUT) == team)["employee_ref"]
                      .cast(pl.String).to_list())
        chosen = [ref for ref in chosen if ref in members]
    if not chosen:
        raise UnprocessableEntity([{"loc": ["body"], "msg": "no employee selected"}])
    return sorted(chosen)


def create_statements_job(principal: Principal, settings: Settings, run_id: uuid.UUID,
                          employee_refs: Sequence[str] | None, team: str | None,
                          fmt: Format) -> ReportJob:
    """Validate, record (committed) and queue a bulk statement job."""
    with tenant_session(principal.tenant_id) as session:
        data = service.load_run(session, settings, run_id, with_rows=False)
        refs = _chosen_refs(principal, data.frame, employee_refs, team)
        job = ReportJob(run_id=run_id, kind="statements", status="queued",
                        params={"employee_refs": refs, "format": fmt},
                        progress={"done": 0, "total": len(refs)},
                        created_by=principal.user_id)
        session.add(job)
        session.flush()
        session.refresh(job)  # server defaults (created_at) before the session closes
        record_event(session, principal_or_actor_id=principal, action="run.statements",
                     entity="plan_run", entity_id=run_id,
                     after={"job_id": str(job.id), "count": len(refs), "format": fmt})
    queue_job(settings, "statements", principal.tenant_id, job.id)
    return job


def run_statements_job(tenant_id: uuid.UUID, job_id: uuid.UUID, settings: Settings) -> None:
    """The worker side: render, zip, record; any failure is recorded on the job. A job left
    `running` by a dead worker (its lock free) is done again from the start."""
    with export_jobs.job_lock(job_id, settings) as free:
        if free:
            with timed_export("statements"):  # failures are recorded on the job, not raised
                _statements_job(tenant_id, job_id, settings)


def _statements_job(tenant_id: uuid.UUID, job_id: uuid.UUID, settings: Settings) -> None:
    try:
        with tenant_session(tenant_id) as session:
            job = session.get(ReportJob, job_id)
            if job is None or job.status not in ("queued", "running"):
                return
            job.status = "running"
            data = service.load_run(session, settings, job.run_id, with_rows=False)
            branding = service.branding(session, tenant_id)
        refs, fmt = job.params["employee_refs"], job.params["format"]
        tapes = explain_all(data.plan, data.frame, refs)
        rendered = render_statements(
            data.plan, tapes, data.info, branding, fmt,
            inputs=service.employee_inputs(data.frame, refs),
            processes=settings.worker_processes,
            progress=lambda done, total: export_jobs.report_progress(tenant_id, job_id, done,
                                                                     total))
        archive = statements_zip(rendered, fmt)
        path = Path(settings.data_dir) / "reports" / str(tenant_id) / f"{job_id}.zip"
        export_jobs._write_atomically(path, archive)
        export_jobs.update_job(tenant_id, job_id, status="done", result_path=str(path),
                               result_sha256=hashlib.sha256(archive).hexdigest(),
                               finished_at=datetime.now(UTC))
    except export_jobs.Cancelled:
        return
    except Exception as error:  # recorded for the user; the worker stays up
        export_jobs.update_job(tenant_id, job_id, status="failed", finished_at=datetime.now(UTC),
                               error=f"{type(error).__name__}: {error}")


def get_job(session: Session, principal: Principal, job_id: uuid.UUID) -> ReportJob:
    """The job if it is the caller's (admins see every job of the tenant), else 404. A
    delivery link's zip is reached only through its link (it expires), never here."""
    job = session.scalar(select(ReportJob).where(ReportJob.id == job_id))
    if job is None or (principal.role is not Role.ADMIN and job.created_by != principal.user_id):
        raise NotFound("job")
    if (job.params or {}).get(DELIVERY_LINK):
        raise NotFound("job")
    return job


def job_file(job: ReportJob) -> Path:
    """The finished zip's path, checked against its recorded SHA-256 (read in blocks: an
    export of 10,000 statements is hundreds of MB)."""
    if job.status != "done" or not job.result_path:
        raise Conflict(f"job {job.id} is {job.status}"
                       + (f": {job.error}" if job.error else ""))
    path = Path(job.result_path)
    if not path.is_file() or export_jobs.file_sha256(path) != job.result_sha256:
        raise Conflict(f"job {job.id}: the stored zip does not match its hash")
    return path


def job_archive(job: ReportJob) -> bytes:
    """The finished zip's bytes (see `job_file`)."""
    return job_file(job).read_bytes()


def cancel_job(session: Session, principal: Principal, job_id: uuid.UUID) -> ReportJob:
    """queued/running -> cancelled (the worker stops after its current chunk); 409 once the
    job has ended. Audited on the run."""
    job = get_job(session, principal, job_id)
    if job.status in export_jobs.FINAL_STATES:
        raise Conflict(f"job {job.id} is {job.status}: only queued or running jobs can be "
                       "cancelled")
    job.status = "cancelled"
    job.finished_at = datetime.now(UTC)
    record_event(session, principal_or_actor_id=principal, action="report_job.cancel",
                 entity="plan_run", entity_id=job.run_id,
                 after={"job_id": str(job.id), "kind": job.kind})
    return job
