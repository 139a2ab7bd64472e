"""Delivering statements to managers: each manager gets exactly their teams' statements.

A delivery is a queued job (`kind = 'delivery'`), started on demand
(`POST /runs/{runId}/deliveries`) or when a run is finalized (DELIVER_ON_FINALIZE, with
SMTP configured). The worker renders each needed statement once, then sends every active
manager whose teams have employees in the run one e-mail with their statements attached
(`<employee_ref>.pdf`), through SMTP_HOST (SMTP_TLS: none, starttls or ssl; SMTP_SENDER).
Each e-mail sent is audited on the run (`run.delivery`: to whom, which employees, the
SHA-256 of every attachment). Without SMTP the job fails with a clear reason; managers can
always download their teams' statements through `POST /runs/{runId}/statements`.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import polars as pl

from server.db.session import tenant_session
from server.modules.audit.service import record_event
from server.modules.auth.permissions import Role
from server.modules.reports import service
from server.modules.reports.bulk import render_statements
from server.modules.reports.bundle import safe_member_name, sha256
from server.modules.reports.export_job import job_lock, report_progress, update_job
from server.modules.reports.models import ReportJob
from server.modules.reports.tapes import explain_all
from server.modules.tenants import service as tenants
from server.settings import Settings


def manager_teams(session: Any) -> list[tuple[str, str | None, tuple[str, ...]]]:
    """(email, display name, teams) of every active manager with teams."""
    return [(user.email, user.display_name, tuple(user.teams or ()))
            for user in tenants.list_users(session)
            if user.role == Role.MANAGER.value and user.is_active and user.teams]


def _recipients(frame: pl.DataFrame, managers: Sequence[tuple[str, str | None, tuple[str, ...]]]
                ) -> list[tuple[str, str | None, list[str]]]:
    if service.TEAM_INPUT not in frame.columns:
        return []
    found = []
    for email, name, teams in managers:
        mine = frame.filter(pl.col(service.TEAM_INPUT).is_in(list(teams)))
        refs = sorted(str(ref) for ref in mine["employee_ref"].to_list())
        if refs:
            found.append((email, name, refs))
    return found


def send(settings: Settings, message: EmailMessage) -> None:
    """One message through the configured SMTP server."""
    if not settings.smtp_host:
        raise RuntimeError("SMTP_HOST is not set: statements cannot be e-mailed")
    timeout = settings.smtp_timeout_seconds
    if settings.smtp_tls == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port,
                                                timeout=timeout,
                                                context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with client:
        if settings.smtp_tls == "starttls":
            client.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            client.login(settings.smtp_username, settings.smtp_password or "")
        client.send_message(message)


def _message(settings: Settings, to: str, name: str | None, plan: str, tenant: str,
             attachments: Sequence[tuple[str, bytes]]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_sender
    message["To"] = to
    message["Subject"] = f"{tenant}: bonus statements of your team ({plan})"
    message.set_content(
        f"Dear {name or to},\n\nattached are the bonus statements of the "
        f"{len(attachments)} employee(s) in your team(s) under the {plan}.\n\n{tenant}\n")
    for filename, pdf in attachments:
        message.add_attachment(pdf, maintype="application", subtype="pdf", filename=filename)
    return message


def run_delivery_job(tenant_id: uuid.UUID, job_id: uuid.UUID, settings: Settings) -> None:
    """The worker side; failures are recorded on the job (e-mails already sent stay sent
    and audited)."""
    with job_lock(job_id, settings) as free:
        if not free:
            return
        try:
            _deliver(tenant_id, job_id, settings)
        except Exception as error:
            update_job(tenant_id, job_id, status="failed", finished_at=datetime.now(UTC),
                       error=f"{type(error).__name__}: {error}")


def _deliver(tenant_id: uuid.UUID, job_id: uuid.UUID, settings: Settings) -> None:
    with tenant_session(tenant_id) as session:
        job = session.get(ReportJob, job_id, with_for_update=True)
        if job is None or job.status != "queued":
            return
        job.status = "running"
        run_id = job.run_id
        data = service.load_run(session, settings, run_id, with_rows=False)
        branding = service.branding(session, tenant_id)
        recipients = _recipients(data.frame, manager_teams(session))
    if recipients and not settings.smtp_host:
        raise RuntimeError("SMTP_HOST is not set: statements cannot be e-mailed")
    refs = sorted({ref for _, _, mine in recipients for ref in mine})
    pdfs = render_statements(data.plan, explain_all(data.plan, data.frame, refs), data.info,
                             branding, "pdf", inputs=service.employee_inputs(data.frame, refs),
                             processes=settings.worker_processes) if refs else {}
    for done, (email, name, mine) in enumerate(recipients, start=1):
        files = [(f"{safe_member_name(ref)}.pdf", pdfs[ref]) for ref in mine]
        send(settings, _message(settings, email, name, data.plan.document.name,
                                branding.tenant_name, files))
        with tenant_session(tenant_id) as session:
            record_event(session, principal_or_actor_id=None, action="run.delivery",
                         entity="plan_run", entity_id=run_id,
                         after={"job_id": str(job_id), "to": email, "employees": mine,
                                "attachments": {f: sha256(pdf) for f, pdf in files}})
        report_progress(tenant_id, job_id, done, len(recipients))
    update_job(tenant_id, job_id, status="done", finished_at=datetime.now(UTC),
               progress={"done": len(recipients), "total": len(recipients)})
