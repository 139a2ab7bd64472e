"""Delivery to managers through a real SMTP server (aiosmtpd): finalize, and each manager's
mailbox holds exactly their teams' statements; every e-mail is audited."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from server.db import session as db
from server.modules.auth.permissions import Role
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
