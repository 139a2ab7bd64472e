"""Export jobs on the worker side: WebSocket progress, cancel, and a crash that resumes
without rendering any statement twice (real PostgreSQL, real files, real Huey consumer)."""

from __future__ import annotations

import base64
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.websockets import WebSocketDisconnect

from server.db import session as db
from server.modules.auth.dependencies import Principal
from server.modules.auth.permissions import Role
from server.modules.reports import export_job
from server.modules.reports.bundle import verify_bundle
from tests.reports.test_api import API, _export
from tests.reports.test_api import draft_run as draft_run
from tests.runs.support import TenantRun, finalize_run


def _principal(run: TenantRun, role: str = "auditor") -> Principal:
    user = run.tenant.users[role]
    return Principal(user_id=user.id, tenant_id=run.tenant.id, role=Role(role),
                     email=user.email, display_name=None, teams=())


def _token(run: TenantRun, role: str) -> str:
    return run.tenant.users[role].token


def test_progress_over_websocket_until_done(rc, draft_run) -> None:
    finalize_run(rc, draft_run)
    queued = rc.post(f"{API}/runs/{draft_run.run_id}/export", headers=draft_run.headers("admin"))
    job_id = queued.json()["id"]
    seen = []
    with rc.websocket_connect(f"{API}/reports/jobs/{job_id}/events"
                              f"?token={_token(draft_run, 'admin')}") as socket:
        while True:
            event = socket.receive_json()
            seen.append(event)
            if event["final"]:
                break
    assert seen[-1]["status"] == "done" and seen[-1]["progress"]["done"] == 6
    assert seen[-1]["progress"]["total"] == 6
    foreign = f"{API}/reports/jobs/{job_id}/events?token={_token(draft_run, 'finance')}"
    with rc.websocket_connect(foreign) as socket, pytest.raises(WebSocketDisconnect) as closed:
        socket.receive_json()
    assert closed.value.code == 4404  # not the caller's job


def test_cancel_a_queued_job_and_not_a_finished_one(rc, draft_run) -> None:
    finalize_run(rc, draft_run)
    settings = rc.app.state.settings
    job = export_job.create_export_job(_principal(draft_run), settings,
                                       uuid.UUID(draft_run.run_id), lambda *_: None)
    headers = draft_run.headers("auditor")
    assert rc.post(f"{API}/reports/jobs/{job.id}/cancel",
                   headers=draft_run.headers("finance")).status_code == 404
    cancelled = rc.post(f"{API}/reports/jobs/{job.id}/cancel", headers=headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    export_job.run_export_job(job.tenant_id, job.id, settings)  # the task arrives late
    assert rc.get(f"{API}/reports/jobs/{job.id}", headers=headers).json()["status"] == \
        "cancelled"
    assert not export_job.job_folder(settings, job.tenant_id, job.id).exists()
    assert rc.post(f"{API}/reports/jobs/{job.id}/cancel", headers=headers).status_code == 409
    done = _export(rc, draft_run, "auditor")
    assert done.status_code == 200


class _Crash(BaseException):
    """A worker process dying mid-job (not an Exception: nothing records it)."""


def test_a_crashed_export_resumes_without_rendering_twice(rc, draft_run, monkeypatch) -> None:
    finalize_run(rc, draft_run)
    settings = rc.app.state.settings.model_copy(update={"worker_processes": 1})
    job = export_job.create_export_job(_principal(draft_run), settings,
                                       uuid.UUID(draft_run.run_id), lambda *_: None)
    real = export_job.report_progress

    def crash_after_two(tenant_id, job_id, done, total, resumed=False):
        real(tenant_id, job_id, done, total, resumed)
        if done >= 2 and not resumed:
            raise _Crash

    monkeypatch.setattr(export_job, "report_progress", crash_after_two)
    with pytest.raises(_Crash):
        export_job.run_export_job(job.tenant_id, job.id, settings)
    monkeypatch.undo()  # the consumer thread shares this module: only this worker "dies"
    folder = export_job.job_folder(settings, job.tenant_id, job.id)
    first = {p.name: p.stat().st_mtime_ns for p in (folder / "statements").glob("*.pdf")}
    assert 2 <= len(first) < 6, first
    assert (job.tenant_id, job.id, "export") in export_job.jobs_in_flight()
    queued: list = []
    assert job.id in export_job.recover_jobs(settings, lambda *args: queued.append(args))
    assert queued == [("export", job.tenant_id, job.id)]
    export_job.run_export_job(job.tenant_id, job.id, settings)  # the recovered task
    with db.tenant_session(job.tenant_id) as session:
        from server.modules.reports.models import ReportJob

        row = session.get(ReportJob, job.id)
        assert row.status == "done", row.error
        assert row.progress == {"done": 6, "total": 6, "resumed": True}
    after = {p.name: p.stat().st_mtime_ns for p in (folder / "statements").glob("*.pdf")}
    assert len(after) == 6 and all(after[name] == first[name] for name in first)
    bundle = (folder / "bundle.zip").read_bytes()
    key = rc.get(f"{API}/tenants/{draft_run.tenant.id}/signing-key",
                 headers=draft_run.headers("auditor")).json()
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
    assert verify_bundle(bundle, public).ok
    assert _export(rc, draft_run, "admin").content == bundle  # same bytes as a clean export
