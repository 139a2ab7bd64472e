"""Delivery to managers through a real SMTP server (aiosmtpd): finalize, and each manager's
mailbox holds exactly their teams' statements; every e-mail is audited."""

from __future__ import annotations

import io
import re
import socket
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from server.db import session as db
from server.modules.auth.permissions import Role
from server.modules.auth.service import issue_token
from server.modules.reports.models import ReportJob
from server.modules.tenants import service as tenants
from tests.reports.conftest import pdf_text
from tests.reports.test_api import API, MANAGER_TEAM, _wait_for_job
from tests.reports.test_api import draft_run as draft_run
from tests.runs.support import TenantRun, finalize_run


class Mailboxes:
    """aiosmtpd handler: every message received, parsed, by recipient."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def of(self, address: str) -> list[EmailMessage]:
        return [message for to, message in self.messages if address in to]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp(rc, monkeypatch) -> Iterator[Mailboxes]:
    """A real SMTP server, and the app (and its in-process worker) pointed at it."""
    boxes = Mailboxes()
    port = _free_port()
    controller = Controller(boxes, hostname="127.0.0.1", port=port)
    controller.start()
    settings = rc.app.state.settings  # the consumer's settings too (same object)
    monkeypatch.setattr(settings, "smtp_host", "127.0.0.1")
    monkeypatch.setattr(settings, "smtp_port", port)
    monkeypatch.setattr(settings, "smtp_sender", "statements@acme.example")
    try:
        yield boxes
    finally:
        controller.stop()


def _add_manager(run: TenantRun, teams: list[str]) -> str:
    with db.tenant_session(run.tenant.id) as session:
        user = tenants.add_user(session, None, email=f"m-{uuid.uuid4().hex[:6]}@x.example",
                                role=Role.MANAGER, display_name="Second Manager", teams=teams)
        return user.user.email


def _team_of(rc, run: TenantRun, ref: str) -> str:
    tape = rc.get(f"{API}/runs/{run.run_id}/results", params={"employee_ref": ref},
                  headers=run.headers("hr")).json()
    return next(step["bindings"]["team"] for step in tape["steps"]
                if "team" in step.get("bindings", {}))


def _attachments(message: EmailMessage) -> dict[str, bytes]:
    return {part.get_filename(): part.get_content() for part in message.iter_attachments()}


def test_finalize_delivers_each_manager_exactly_their_teams(rc, draft_run, smtp) -> None:
    other_team = _team_of(rc, draft_run, "E0000003")
    assert other_team != MANAGER_TEAM
    members = [ref for ref in (f"E000000{n}" for n in range(3, 7))
               if _team_of(rc, draft_run, ref) == other_team]
    second = _add_manager(draft_run, [other_team])
    idle = _add_manager(draft_run, ["NO-SUCH-TEAM"])
    first = draft_run.tenant.users["manager"].email
    finalize_run(rc, draft_run)
    deadline = time.monotonic() + 300
    while len(smtp.messages) < 2:  # poll the mailbox, bounded
        assert time.monotonic() < deadline, smtp.messages
        time.sleep(0.1)
    audit = rc.get(f"{API}/audit", params={"entity_id": draft_run.run_id, "limit": 200},
                   headers=draft_run.headers("auditor")).json()["items"]
    deliveries = [event for event in audit if event["action"] == "run.delivery"]
    assert len(deliveries) == 2
    job = _wait_for_job(rc, deliveries[0]["after"]["job_id"], draft_run.headers("admin"))
    assert job["status"] == "done" and job["progress"] == {"done": 2, "total": 2}

    [mine] = smtp.of(first)
    attached = _attachments(mine)
    assert sorted(attached) == ["E0000001.pdf", "E0000002.pdf"]
    assert "E0000002" in pdf_text(attached["E0000002.pdf"])
    assert mine["From"] == "statements@acme.example"
    [theirs] = smtp.of(second)
    assert sorted(_attachments(theirs)) == sorted(f"{ref}.pdf" for ref in members)
    assert smtp.of(idle) == []
    sent_to = {event["after"]["to"]: event["after"]["employees"] for event in deliveries}
    assert sent_to == {first: ["E0000001", "E0000002"], second: members}


def test_delivery_on_demand_needs_a_finalized_run_and_a_sender_role(rc, draft_run) -> None:
    path = f"{API}/runs/{draft_run.run_id}/deliveries"
    draft = rc.post(path, headers=draft_run.headers("hr"))
    assert draft.status_code == 409 and "finalized" in draft.json()["detail"]
    assert rc.post(path, headers=draft_run.headers("manager")).status_code == 403
    assert rc.post(path, headers=draft_run.headers("readonly")).status_code == 403


def _manager_headers(run: TenantRun, email: str) -> dict[str, str]:
    with db.tenant_session(run.tenant.id) as session:
        user = next(u for u in tenants.list_users(session) if u.email == email)
        token = issue_token(session, user.id, timedelta(hours=1)).token
    return {"Authorization": f"Bearer {token}"}


def _set_metadata(tenant_id, **values) -> None:
    with db.tenant_session(tenant_id) as session:
        tenant = tenants.get_tenant(session, tenant_id)
        tenant.metadata_ = {**tenant.metadata_, **values}


LINK = re.compile(r"https?://\S+(/api/v1/reports/deliveries/([0-9a-f-]{36})/download)")


def test_link_mode_each_manager_downloads_exactly_their_teams(rc, draft_run, smtp,
                                                              make_tenant) -> None:
    """Tenant in link mode and de-DE: each e-mail (German) carries a link, no attachment;
    the link gives exactly that manager's teams' statements, to them only, audited; it
    expires."""
    _set_metadata(draft_run.tenant.id, delivery={"mode": "link", "link_days": 7},
                  branding={"locale": "de-DE"})
    other_team = _team_of(rc, draft_run, "E0000003")
    members = [ref for ref in (f"E000000{n}" for n in range(3, 7))
               if _team_of(rc, draft_run, ref) == other_team]
    second = _add_manager(draft_run, [other_team])
    first = draft_run.tenant.users["manager"].email
    finalize_run(rc, draft_run)
    deadline = time.monotonic() + 300
    while len(smtp.messages) < 2:
        assert time.monotonic() < deadline, smtp.messages
        time.sleep(0.1)
    links = {}
    for address in (first, second):
        [message] = smtp.of(address)
        assert _attachments(message) == {}
        assert "Bonusmitteilungen Ihres Teams" in message["Subject"]
        body = message.get_body().get_content()
        assert "läuft an diesem Tag ab" in body
        found = LINK.search(body)
        assert found, body
        links[address] = found.group(1)

    mine = rc.get(links[first], headers=draft_run.headers("manager"))
    assert mine.status_code == 200, mine.text
    with zipfile.ZipFile(io.BytesIO(mine.content)) as archive:
        names = sorted(archive.namelist())
        assert names == ["statements/E0000001.pdf", "statements/E0000002.pdf"]
        assert "Bonusmitteilung" in pdf_text(archive.read("statements/E0000002.pdf"))
    theirs = rc.get(links[second], headers=_manager_headers(draft_run, second))
    assert theirs.status_code == 200
    with zipfile.ZipFile(io.BytesIO(theirs.content)) as archive:
        assert sorted(archive.namelist()) == sorted(f"statements/{r}.pdf" for r in members)

    # single-manager: another manager, an admin, another tenant's admin all get 404
    assert rc.get(links[second], headers=draft_run.headers("manager")).status_code == 404
    assert rc.get(links[first], headers=draft_run.headers("admin")).status_code == 404
    stranger = make_tenant()
    assert rc.get(links[first], headers=stranger.users["admin"].headers).status_code == 404
    assert rc.get(links[first]).status_code == 401
    # the zip is not reachable as an ordinary job (where it would not expire)
    link_id = LINK.search(smtp.of(first)[0].get_body().get_content()).group(2)
    assert rc.get(f"{API}/reports/jobs/{link_id}/download",
                  headers=draft_run.headers("manager")).status_code == 404

    audit = rc.get(f"{API}/audit", params={"entity_id": draft_run.run_id, "limit": 200},
                   headers=draft_run.headers("auditor")).json()["items"]
    sent = {e["after"]["to"]: e["after"] for e in audit if e["action"] == "run.delivery"}
    assert sent[first]["mode"] == "link" and sent[first]["link_id"] == link_id
    assert sent[first]["employees"] == ["E0000001", "E0000002"]
    downloads = [e["after"] for e in audit if e["action"] == "run.delivery.download"]
    assert sorted(d["employees"] for d in downloads) == sorted([["E0000001", "E0000002"],
                                                               members])

    # a manager moved off the team no longer gets the old team's statements
    with db.tenant_session(draft_run.tenant.id) as session:
        user = next(u for u in tenants.list_users(session) if u.email == second)
        tenants.get_user(session, user.id).teams = ["NO-SUCH-TEAM"]
    assert rc.get(links[second], headers=_manager_headers(draft_run, second)).status_code == 404

    # expired: 410 with a reason
    with db.tenant_session(draft_run.tenant.id) as session:
        job = session.get(ReportJob, uuid.UUID(link_id))
        job.params = {**job.params, "expires_at": "2020-01-01T00:00:00+00:00"}
    gone = rc.get(links[first], headers=draft_run.headers("manager"))
    assert gone.status_code == 410 and "expired" in gone.json()["detail"]
