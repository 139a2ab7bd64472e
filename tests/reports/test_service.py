"""Reports service: statement visibility by role and team, run audit events, whole exports."""

from __future__ import annotations

import uuid

import polars as pl
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.backends import polars as polars_backend
from engine.data import load_inputs
from engine.plan import compile_plan, load_plan
from samples import generate
from server.db import session as db
from server.errors import Forbidden, NotFound
from server.modules.audit.service import record_event
from server.modules.auth.dependencies import Principal
from server.modules.auth.permissions import Role
from server.modules.reports.bundle import verify_bundle
from server.modules.reports.export import rows_from_frame
from server.modules.reports.service import (
    ensure_visible,
    export_bundle,
    individual_statement,
    run_audit_events,
    visible_refs,
)
from tests.reports.conftest import BRANDING, PLAN, Sample, pdf_text, run_info


def _principal(role: Role, teams: tuple[str, ...] = ()) -> Principal:
    return Principal(uuid.uuid4(), uuid.uuid4(), role, f"{role}@x.example", None, teams)


def test_managers_see_only_their_teams(sample: Sample) -> None:
    team = sample.frame["team"][0]
    expected = set(sample.frame.filter(pl.col("team") == team)["employee_ref"].to_list())
    assert visible_refs(_principal(Role.MANAGER, (team,)), sample.frame) == expected
    assert visible_refs(_principal(Role.MANAGER), sample.frame) == set()
    outsider = sample.frame.filter(pl.col("team") != team)["employee_ref"][0]
    with pytest.raises(NotFound):
        ensure_visible(_principal(Role.MANAGER, (team,)), sample.frame, outsider)
    ensure_visible(_principal(Role.MANAGER, (team,)), sample.frame, sorted(expected)[0])
    for role in (Role.ADMIN, Role.HR, Role.FINANCE, Role.AUDITOR):
        assert visible_refs(_principal(role), sample.frame) is None
        ensure_visible(_principal(role), sample.frame, outsider)
    with pytest.raises(NotFound):
        ensure_visible(_principal(Role.ADMIN), sample.frame, "E9999999")
    with pytest.raises(Forbidden):
        visible_refs(_principal(Role.READONLY), sample.frame)


def test_individual_statement_formats(sample: Sample) -> None:
    html = individual_statement(sample.plan, sample.frame, "E0000002", run_info(), BRANDING,
                                "html")
    assert b"E0000002" in html and b"DRAFT" in html
    pdf = individual_statement(sample.plan, sample.frame, "E0000002", run_info(), BRANDING,
                               "pdf")
    assert "Performance score (1-5)" in pdf_text(pdf)


def test_run_audit_events_leave_out_exports(make_tenant) -> None:
    tenant = make_tenant()
    run_id, other = uuid.uuid4(), uuid.uuid4()
    with db.tenant_session(tenant.id) as session:
        for action, entity_id in [("run.create", run_id), ("run.export", run_id),
                                  ("run.finalize", run_id), ("run.create", other)]:
            record_event(session, principal_or_actor_id=tenant.users["admin"].id,
                         action=action, entity="plan_run", entity_id=entity_id,
                         after={"n": action})
    with db.tenant_session(tenant.id) as session:
        events = run_audit_events(session, run_id)
    assert [e["action"] for e in events] == ["run.create", "run.finalize"]
    assert events[0]["id"] < events[1]["id"] and events[1]["prev_signature"]


def test_export_bundle_of_a_finalized_run(tmp_path) -> None:
    generate.write(6, 2, 3, tmp_path)
    plan = compile_plan(load_plan(PLAN))
    frame = load_inputs(plan, tmp_path / "employees.csv", tmp_path / "funds.csv")
    rows = rows_from_frame(polars_backend.evaluate(plan, frame).frame)
    key = Ed25519PrivateKey.generate()
    with pytest.raises(ValueError, match="only finalized"):
        export_bundle(plan, run_info("draft"), "t", rows, frame, [], BRANDING, key)
    bundle = export_bundle(plan, run_info("finalized"), "t", rows, frame, [], BRANDING, key,
                           processes=1)
    report = verify_bundle(bundle, key.public_key())
    assert report.ok, report.problems
    paths = {entry["path"] for entry in report.manifest["files"]}
    assert {f"statements/E000000{n}.pdf" for n in range(1, 7)} <= paths
