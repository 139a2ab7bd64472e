"""Signed export bundles as queued jobs: never rendered inside an HTTP request.

`create_export_job` checks the run is finalized, makes sure the tenant has a signing key,
records the job (committed) and an audit event, and queues `reports.export`. The worker:

- holds a PostgreSQL advisory lock on the job while it works, so one job never runs twice
  at once, and a job left `running` whose lock is free belongs to a dead worker;
- writes each statement PDF to `<data_dir>/reports/<tenant>/<job>/statements/` atomically
  as its chunk arrives, and on a restart renders only the statements not on disk yet
  (a crash resumes without duplicating files; the bundle is the same bytes either way);
- checks for cancellation after every chunk (`POST /reports/jobs/{id}/cancel`);
- streams the bundle (results CSV/XLSX, every statement, audit events, the frozen audit
  workbook, manifest, signature) to `bundle.zip` next to them and records its SHA-256.

The periodic `reports.recover` task queues again every job left `running` by a dead worker.
"""

from __future__ import annotations

import hashlib
import os
import resource
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

from server.db import session as db
from server.db.session import tenant_session
from server.errors import Conflict
from server.modules.audit.service import record_event
from server.modules.auth.dependencies import Principal
from server.modules.reports import service, signing
from server.modules.reports.bulk import member_name, render_statements
from server.modules.reports.bundle import write_bundle
from server.modules.reports.export import export_files, manifest_run
from server.modules.reports.metrics import timed_export
from server.modules.reports.models import ReportJob
from server.modules.reports.tapes import explain_all
from server.modules.workbooks import service as workbooks
from server.settings import Settings

FINAL_STATES = frozenset({"done", "failed", "cancelled"})
BUNDLE = "bundle.zip"


class Cancelled(Exception):
    """The job was cancelled while it ran."""


def job_folder(settings: Settings, tenant_id: uuid.UUID, job_id: uuid.UUID) -> Path:
    return Path(settings.data_dir) / "reports" / str(tenant_id) / str(job_id)


def create_export_job(principal: Principal, settings: Settings, run_id: uuid.UUID,
                      enqueue: Callable[[str, str], Any]) -> ReportJob:
    """Validate (finalized run, 409 otherwise; its input data on disk), record and queue an
    export job."""
    with tenant_session(principal.tenant_id) as session:
        info = service.run_header(session, run_id)
        if not info.finalized:
            raise Conflict(f"run {run_id} is {info.status}: only finalized runs are exported")
        # The run's input data is checked now (410 naming a missing file, 409 for a changed
        # one), so the caller hears it from this request rather than from a failed job.
        service.load_run(session, settings, run_id, with_rows=False)
        key = signing.active_key(session, settings, principal)
        job = ReportJob(run_id=run_id, kind="export", status="queued", params={},
                        progress={"done": 0, "total": None}, created_by=principal.user_id)
        session.add(job)
        session.flush()
        session.refresh(job)
        record_event(session, principal_or_actor_id=principal, action="run.export",
                     entity="plan_run", entity_id=run_id,
                     after={"job_id": str(job.id), "key_id": key.key_id})
    enqueue(str(principal.tenant_id), str(job.id))
    return job


@contextmanager
def job_lock(job_id: uuid.UUID, settings: Settings) -> Iterator[bool]:
    """The job's advisory lock on a dedicated connection; yields False if another worker
    holds it (the lock dies with its holder's connection)."""
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set")
    key = f"paysheet-report-job-{job_id}"
    with psycopg.connect(settings.database_url, autocommit=True,
                         application_name=f"paysheet-job-{job_id}") as conn:
        held = conn.execute("select pg_try_advisory_lock(hashtextextended(%s, 0))",
                            (key,)).fetchone()[0]
        try:
            yield bool(held)
        finally:
            if held:
                conn.execute("select pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


def update_job(tenant_id: uuid.UUID, job_id: uuid.UUID, **changes: Any) -> str | None:
    """Apply `changes` in a short transaction unless the job was cancelled meanwhile;
    returns the job's status after it (None if gone)."""
    with tenant_session(tenant_id) as session:
        job = session.get(ReportJob, job_id, with_for_update=True)
        if job is None:
            return None
        if job.status != "cancelled":
            for name, value in changes.items():
                setattr(job, name, value)
        return job.status


def _write_atomically(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)
    os.replace(temporary, path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_export_job(tenant_id: uuid.UUID, job_id: uuid.UUID, settings: Settings) -> None:
    """The worker side; a failure is recorded on the job, a cancellation ends it quietly."""
    with job_lock(job_id, settings) as free:
        if not free:
            return  # a live worker has it
        try:
            with timed_export("bundle"):  # the export SLO's measure (P95 < 30 s)
                _export(tenant_id, job_id, settings)
        except Cancelled:
            return
        except Exception as error:  # recorded for the user; the worker stays up
            update_job(tenant_id, job_id, status="failed", finished_at=datetime.now(UTC),
                       error=f"{type(error).__name__}: {error}")


class _Phases:
    """Wall seconds of each phase of a job and CPU seconds of its processes, kept in its
    progress (`timings`, `cpu`): the figures bench/export_api.py prints, and what an
    operator reads when an export is slow. On a shared machine wall time depends on the
    neighbours; CPU seconds do not."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._mark = time.perf_counter()
        self._cpu = _cpu_seconds(resource.RUSAGE_SELF), _cpu_seconds(resource.RUSAGE_CHILDREN)

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._mark, 3)
        self._mark = now

    def finish(self) -> dict[str, dict[str, float]]:
        own, children = self._cpu
        self.cpu["job process"] = round(_cpu_seconds(resource.RUSAGE_SELF) - own, 3)
        self.cpu["render processes"] = round(_cpu_seconds(resource.RUSAGE_CHILDREN)
                                             - children, 3)
        return {"timings": self.timings, "cpu": self.cpu}


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _export(tenant_id: uuid.UUID, job_id: uuid.UUID, settings: Settings) -> None:
    phases = _Phases()
    with tenant_session(tenant_id) as session:
        job = session.get(ReportJob, job_id, with_for_update=True)
        if job is None or job.status not in ("queued", "running"):
            return
        resumed = job.status == "running"  # its last worker died: carry on from its files
        job.status = "running"
        run_id = job.run_id
        data = service.load_run(session, settings, run_id)
        events = service.run_audit_events(session, run_id)
        branding = service.branding(session, tenant_id)
        key = signing.active_key(session, settings)
        private, key_id = signing.private_key(key, settings), key.key_id
    phases.done("load")
    folder = job_folder(settings, tenant_id, job_id)
    refs = sorted(str(row["employee_ref"]) for row in data.rows)
    paths = {ref: folder / member_name(ref, "pdf") for ref in refs}
    todo = [ref for ref in refs if not paths[ref].exists()]
    total, already = len(refs), len(refs) - len(todo)
    report_progress(tenant_id, job_id, already, total, resumed)

    def store(pairs: list[tuple[str, bytes]]) -> None:
        for ref, pdf in pairs:
            _write_atomically(paths[ref], pdf)

    with ThreadPoolExecutor(max_workers=1) as side:  # while the processes render
        other_files = side.submit(_other_files, tenant_id, settings, data, events, phases)
        tapes = explain_all(data.plan, data.frame, todo) if todo else {}
        phases.done("tapes")
        render_statements(data.plan, tapes, data.info, branding, "pdf",
                          inputs=service.employee_inputs(data.frame, todo),
                          processes=settings.worker_processes, on_chunk=store,
                          progress=lambda done, _: report_progress(
                              tenant_id, job_id, already + done, total, resumed))
        phases.done("statements")
        files: dict[str, bytes | Path] = dict(other_files.result())
        phases.done("other files (after the statements)")
    files.update({member_name(ref, "pdf"): paths[ref] for ref in refs})
    digest, size = _write_signed_bundle(folder, files, data, str(tenant_id), private)
    phases.done("manifest, signature and zip")
    status = update_job(tenant_id, job_id, status="done", result_path=str(folder / BUNDLE),
                        result_sha256=digest, finished_at=datetime.now(UTC),
                        progress=_progress_of(total, total, resumed, phases.finish()))
    if status == "done":
        with tenant_session(tenant_id) as session:
            record_event(session, principal_or_actor_id=None, action="run.export.done",
                         entity="plan_run", entity_id=run_id,
                         after={"job_id": str(job_id), "sha256": digest, "bytes": size,
                                "key_id": key_id})


def _write_signed_bundle(folder: Path, files: dict[str, bytes | Path], data: service.RunData,
                         tenant: str, private: Any) -> tuple[str, int]:
    """Stream the signed bundle to `folder/bundle.zip` (atomically); its SHA-256 and size."""
    run_facts = manifest_run(data.info, data.plan, tenant, files)  # type: ignore[arg-type]
    fd, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w+b") as handle:
        write_bundle(handle, files, run_facts, private)
    os.replace(temporary, folder / BUNDLE)
    return file_sha256(folder / BUNDLE), (folder / BUNDLE).stat().st_size


def _progress_of(done: int, total: int, resumed: bool,
                 measured: dict[str, Any] | None = None) -> dict[str, Any]:
    """`{done, total}`, plus `resumed: true` when a dead worker's job was picked up, and
    the phases' wall seconds and CPU seconds (`timings`, `cpu`) once it is done."""
    return ({"done": done, "total": total} | ({"resumed": True} if resumed else {})
            | (measured or {}))


def _other_files(tenant_id: uuid.UUID, settings: Settings, data: service.RunData,
                 events: list[dict[str, Any]], phases: _Phases) -> dict[str, bytes]:
    """Results CSV/XLSX, audit events and the frozen audit workbook: built in a thread of
    the job's process while its worker processes render statements (its CPU is recorded:
    the audit workbook recalculates every formula, the biggest cost after the statements)."""
    started, cpu = time.perf_counter(), _cpu_seconds(resource.RUSAGE_THREAD)
    with tenant_session(tenant_id) as session:
        workbook = workbooks.frozen_audit_workbook(session, settings,
                                                   uuid.UUID(data.info.run_id))
    files = export_files(data.plan, data.rows, {}, events, workbook)
    phases.cpu["audit workbook and results (thread)"] = round(
        _cpu_seconds(resource.RUSAGE_THREAD) - cpu, 3)
    phases.timings["audit workbook and results (thread, alongside)"] = round(
        time.perf_counter() - started, 3)
    return files


def report_progress(tenant_id: uuid.UUID, job_id: uuid.UUID, done: int, total: int,
                    resumed: bool = False) -> None:
    """Record progress; raise Cancelled when the job was cancelled meanwhile."""
    status = update_job(tenant_id, job_id, progress=_progress_of(done, total, resumed))
    if status != "running":
        raise Cancelled(str(job_id))


def jobs_in_flight() -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    """(tenant, job, kind) of every `running` job of every tenant (definer function)."""
    with db.system_session() as session:
        rows = session.execute(text(
            "select tenant_id, job_id, kind from comp.report_jobs_in_flight()")).all()
    return [(row.tenant_id, row.job_id, row.kind) for row in rows]


def recover_jobs(settings: Settings, enqueue: Callable[[str, uuid.UUID, uuid.UUID], Any]
                 ) -> list[uuid.UUID]:
    """Queue again each `running` job whose lock is free (its worker died); returns them."""
    handled = []
    for tenant_id, job_id, kind in jobs_in_flight():
        with job_lock(job_id, settings) as free:
            if not free:
                continue
        enqueue(kind, tenant_id, job_id)
        handled.append(job_id)
    return handled
