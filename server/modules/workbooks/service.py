"""Plan workbooks: the blank template, import of a filled one, export of a stored plan.

Import goes through the plans service (a draft is created exactly as `POST …/bonus-plans`
with a `document` would), so the workbook path and the add-in path store the same thing.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from server.errors import UnprocessableEntity
from server.modules.plans import service as plans
from server.modules.plans.schemas import PlanDocumentIn
from server.modules.workbooks.locate import locate_all
from server.modules.workbooks.reader import WorkbookUnreadable, read_workbook
from server.modules.workbooks.template import build_workbook, workbook_bytes
from server.principal import Principal

MAX_WORKBOOK_BYTES = 5 * 1024 * 1024
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def frozen_audit_workbook(session: Session, settings: Any, run_id: uuid.UUID) -> bytes:
    """The run's frozen audit workbook (as `GET /runs/{id}/workbook` gives it), for the
    signed export bundle, which audits its own creation."""
    from server.modules.workbooks.audit import frozen_workbook

    return frozen_workbook(session, settings, run_id)[1]


def template_bytes() -> bytes:
    return workbook_bytes(build_workbook())


def _unreadable(message: str) -> UnprocessableEntity:
    return UnprocessableEntity([{"loc": ["body", "file"], "msg": message,
                                 "type": "workbook"}], detail=message)


def import_workbook(session: Session, principal: Principal, data: bytes) -> dict[str, Any]:
    """A new draft plan from a filled template: 422 listing every cell error if the
    workbook cannot form a plan document; else the plan plus its located diagnostics."""
    if len(data) > MAX_WORKBOOK_BYTES:
        raise _unreadable(f"workbook larger than {MAX_WORKBOOK_BYTES // (1024 * 1024)} MB")
    try:
        read = read_workbook(data)
    except WorkbookUnreadable as error:
        raise _unreadable(str(error)) from None
    if not read.ok:
        errors = [error.as_dict() | {"loc": [error.sheet, error.cell], "msg": error.message,
                                     "type": error.code} for error in read.errors]
        raise UnprocessableEntity(errors, detail=f"{len(errors)} problem(s) in the workbook; "
                                                 f"first: {errors[0]['cell']}: {errors[0]['msg']}")
    document = read.document
    parsed = PlanDocumentIn.model_validate(document).model_dump()
    plan = plans.create_plan(session, principal, {"name": parsed["name"],
                                                  "version": parsed.get("version") or 1},
                             parsed)
    compiled, diagnostics = plans.diagnostics_for(plan)
    return {
        "plan": plan,
        "valid": compiled is not None,
        "plan_hash": compiled.plan_hash if compiled else None,
        "diagnostics": locate_all(document, diagnostics, read.rows),
        "tests": read.tests,
    }


def export_workbook(session: Session, plan_id: uuid.UUID) -> tuple[str, bytes]:
    """(file name, bytes) of the stored plan written into the template, with its current
    diagnostics in the Status/Message cells."""
    plan = plans.get_plan(session, plan_id)
    document = plans.document_of(plan)
    _, diagnostics = plans.diagnostics_for(plan)
    meta = {"plan_id": str(plan.id), "status": plan.status, "plan_hash": plan.plan_hash,
            "version": plan.version}
    workbook = build_workbook(document, meta, diagnostics)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in plan.name)[:80]
    return f"{safe}_v{plan.version}.xlsx", workbook_bytes(workbook)
