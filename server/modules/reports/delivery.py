"""Delivering statements to managers: each manager gets exactly their teams' statements.

A delivery is a queued job (`kind = 'delivery'`), started on demand
(`POST /runs/{runId}/deliveries`) or when a run is finalized (DELIVER_ON_FINALIZE, with
SMTP configured). The worker renders each needed statement once, then sends every active
manager whose teams have employees in the run one e-mail through SMTP_HOST (SMTP_TLS: none,
starttls or ssl; SMTP_SENDER), in the tenant's locale, in the tenant's delivery mode
(`comp.tenants.metadata.delivery = {"mode": "attachments" | "link", "link_days": 14}`):

- `attachments` (default): their statements attached (`<employee_ref>.pdf`);
- `link`: their statements zipped once on the server, and a link to
  `GET /api/v1/reports/deliveries/{linkId}/download`: only that manager, signed in, gets
  it (anyone else, admins and other tenants included, 404), only until it expires (410), and
  only while their teams still hold exactly those employees (the one access rule,
  `auth.access.pay_scope`). Every download is audited (`run.delivery.download`).

Each e-mail sent is audited on the run (`run.delivery`: to whom, which employees, the mode,
the SHA-256 of every statement). Without SMTP the job fails with a clear reason; managers can
always download their teams' statements through `POST /runs/{runId}/statements`.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.session import tenant_session
from server.errors import NotFound, ProblemError
from server.modules.audit.service import record_event
from server.modules.auth.access import pay_scope
from server.modules.auth.permissions import Role
from server.modules.reports import jobs, service
from server.modules.reports.bulk import render_statements, statements_zip
from server.modules.reports.bundle import safe_member_name, sha256
from server.modules.reports.export_job import (
    _write_atomically,
    job_lock,
    report_progress,
    update_job,
)
from server.modules.reports.localize import Localizer
from server.modules.reports.messages import words
from server.modules.reports.models import ReportJob
from server.modules.reports.tapes import explain_all
from server.modules.tenants import service as tenants
from server.principal import Principal
from server.settings import Settings

MODES = ("attachments", "link")
DEFAULT_LINK_DAYS = 14
MAX_LINK_DAYS = 90
LINK_KEY = jobs.DELIVERY_LINK
"""`report_jobs.params` key marking a delivery link's zip (a `statements` job owned by the
manager): such a job is reached only through the delivery link route."""
DOWNLOAD_ACTION = "run.delivery.download"


@dataclass(frozen=True)
class DeliveryConfig:
    """A tenant's delivery settings (`comp.tenants.metadata.delivery`); anything unknown
    falls back to attachments and 14 days."""

    mode: str = "attachments"
    link_days: int = DEFAULT_LINK_DAYS

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> DeliveryConfig:
        found = (metadata or {}).get("delivery") or {}
        if not isinstance(found, Mapping):
            return cls()
        mode = found.get("mode") if found.get("mode") in MODES else "attachments"
        days = found.get("link_days")
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_LINK_DAYS:
            days = DEFAULT_LINK_DAYS
        return cls(mode, days)


@dataclass(frozen=True)
class Recipient:
    user_id: uuid.UUID
    email: str
    name: str | None
    refs: list[str]
    teams: dict[str, str]  # employee_ref -> team, as delivered


def manager_teams(session: Any) -> list[tuple[uuid.UUID, str, str | None, tuple[str, ...]]]:
    """(user id, email, display name, teams) of every active manager with teams."""
    return [(user.id, user.email, user.display_name, tuple(user.teams or ()))
            for user in tenants.list_users(session)
            if user.role == Role.MANAGER.value and user.is_active and user.teams]


def _recipients(frame: pl.DataFrame,
                managers: Sequence[tuple[uuid.UUID, str, str | None, tuple[str, ...]]]
                ) -> list[Recipient]:
    if service.TEAM_INPUT not in frame.columns:
        return []
    found = []
    for user_id, email, name, teams in managers:
        mine = frame.filter(pl.col(service.TEAM_INPUT).is_in(list(teams)))
        team_of = dict(zip(mine["employee_ref"].cast(pl.String).to_list(),
                           mine[service.TEAM_INPUT].cast(pl.String).to_list(), strict=True))
        if team_of:
            found.append(Recipient(user_id, email, name, sorted(team_of), team_of))
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


def _message(settings: Settings, to: Recipient, plan: str, tenant: str, locale: str,
             attachments: Sequence[tuple[str, bytes]], link: tuple[str, datetime] | None
             ) -> EmailMessage:
    """The e-mail to one manager in the tenant's locale: statements attached, or a link."""
    w = words(locale)
    message = EmailMessage()
    message["From"] = settings.smtp_sender
    message["To"] = to.email
    message["Subject"] = w["mail_subject"].format(tenant=tenant, plan=plan)
    values = {"name": to.name or to.email, "count": len(to.refs), "plan": plan,
              "tenant": tenant}
    if link is not None:
        url, expires = link
        message.set_content(w["mail_link"].format(
            url=url, expires=Localizer(locale).date(expires.date()), **values))
        return message
    message.set_content(w["mail_attached"].format(**values))
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


def _link(tenant_id: uuid.UUID, settings: Settings, job: tuple[uuid.UUID, uuid.UUID],
          to: Recipient, files: dict[str, bytes], days: int) -> tuple[str, datetime, str]:
    """Store `to`'s statements as one zip owned by them; (url, expiry, link id)."""
    run_id, delivery_id = job
    link_id = uuid.uuid4()
    archive = statements_zip(files, "pdf")
    path = Path(settings.data_dir) / "reports" / str(tenant_id) / f"{link_id}.zip"
    _write_atomically(path, archive)
    expires = datetime.now(UTC) + timedelta(days=days)
    with tenant_session(tenant_id) as session:
        session.add(ReportJob(
            id=link_id, run_id=run_id, kind="statements", status="done", created_by=to.user_id,
            params={LINK_KEY: str(delivery_id), "expires_at": expires.isoformat(),
                    "employee_refs": to.refs, "teams": to.teams, "format": "pdf"},
            progress={"done": len(to.refs), "total": len(to.refs)}, result_path=str(path),
            result_sha256=hashlib.sha256(archive).hexdigest(), finished_at=datetime.now(UTC)))
    base = (settings.public_base_url or "http://localhost:8000").rstrip("/")
    return f"{base}/api/v1/reports/deliveries/{link_id}/download", expires, str(link_id)


def _deliver(tenant_id: uuid.UUID, job_id: uuid.UUID, settings: Settings) -> None:
    with tenant_session(tenant_id) as session:
        job = session.get(ReportJob, job_id, with_for_update=True)
        if job is None or job.status != "queued":
            return
        job.status = "running"
        run_id = job.run_id
        data = service.load_run(session, settings, run_id, with_rows=False)
        branding = service.branding(session, tenant_id)
        config = DeliveryConfig.from_metadata(tenants.get_tenant(session, tenant_id).metadata_)
        recipients = _recipients(data.frame, manager_teams(session))
    if recipients and not settings.smtp_host:
        raise RuntimeError("SMTP_HOST is not set: statements cannot be e-mailed")
    refs = sorted({ref for to in recipients for ref in to.refs})
    pdfs = render_statements(data.plan, explain_all(data.plan, data.frame, refs), data.info,
                             branding, "pdf", inputs=service.employee_inputs(data.frame, refs),
                             processes=settings.worker_processes) if refs else {}
    plan_name = data.plan.document.name
    for done, to in enumerate(recipients, start=1):
        files = {ref: pdfs[ref] for ref in to.refs}
        attached = [(f"{safe_member_name(ref)}.pdf", pdf) for ref, pdf in files.items()]
        after: dict[str, Any] = {"job_id": str(job_id), "to": to.email, "employees": to.refs,
                                 "mode": config.mode,
                                 "attachments": {name: sha256(pdf) for name, pdf in attached}}
        link = None
        if config.mode == "link":
            url, expires, link_id = _link(tenant_id, settings, (run_id, job_id), to, files,
                                          config.link_days)
            link = (url, expires)
            after |= {"link_id": link_id, "expires_at": expires.isoformat()}
        send(settings, _message(settings, to, plan_name, branding.tenant_name,
                                branding.locale, attached, link))
        with tenant_session(tenant_id) as session:
            record_event(session, principal_or_actor_id=None, action="run.delivery",
                         entity="plan_run", entity_id=run_id, after=after)
        report_progress(tenant_id, job_id, done, len(recipients))
    update_job(tenant_id, job_id, status="done", finished_at=datetime.now(UTC),
               progress={"done": len(recipients), "total": len(recipients)})


def link_download(session: Session, principal: Principal, link_id: uuid.UUID) -> Path:
    """The zip behind a delivery link, for the manager it was sent to only (404 for anyone
    else), before it expires (410), while their teams still cover exactly its employees
    (404 otherwise). Audited."""
    job = session.scalar(select(ReportJob).where(ReportJob.id == link_id))
    if job is None or not (job.params or {}).get(LINK_KEY) or job.created_by != principal.user_id:
        raise NotFound("delivery link")
    refs, teams = job.params["employee_refs"], job.params.get("teams") or {}
    scope = pay_scope(principal)
    if not scope.everyone and scope.visible(teams) != set(refs):
        raise NotFound("delivery link")
    if datetime.fromisoformat(job.params["expires_at"]) <= datetime.now(UTC):
        raise ProblemError(410, "Gone", f"this delivery link expired on "
                           f"{job.params['expires_at'][:10]}: ask HR to send the statements "
                           "again")
    path = jobs.job_file(job)
    record_event(session, principal_or_actor_id=principal, action=DOWNLOAD_ACTION,
                 entity="plan_run", entity_id=job.run_id,
                 after={"link_id": str(link_id), "delivery_job_id": job.params[LINK_KEY],
                        "employees": refs})
    return path
