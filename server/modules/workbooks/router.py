"""Routes: the plan template, workbook import and export, and the sheet layout (for the
add-in). Thin: parse, call the service, shape the response."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, File, Request, Response, UploadFile
from pydantic import BaseModel

from server.modules.auth.dependencies import DbSession, Principal, require, same_tenant
from server.modules.plans.schemas import PlanOut
from server.modules.workbooks import audit, service
from server.modules.workbooks.layout import layout

router = APIRouter(tags=["plan workbooks"])


class LocatedDiagnostic(BaseModel):
    """A plan diagnostic with its workbook cell (`Steps!C5`)."""

    sheet: str
    row: int | None
    column: str | None
    cell: str
    code: str | None
    message: str | None
    step: str | None
    field: str | None
    expr_line: int | None
    expr_column: int | None


class WorkbookImported(BaseModel):
    plan: PlanOut
    valid: bool
    plan_hash: str | None
    diagnostics: list[LocatedDiagnostic]
    tests: list[dict[str, Any]]


def _xlsx(data: bytes, filename: str) -> Response:
    return Response(data, media_type=service.XLSX_MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/templates/plan.xlsx", response_class=Response,
            responses={200: {"content": {service.XLSX_MEDIA_TYPE: {}}}})
def plan_template(principal: Principal = Depends(require("plans.read"))) -> Response:
    """The blank plan workbook (protected; only authoring cells unlocked)."""
    return _xlsx(service.template_bytes(), "paysheet_plan_template.xlsx")


@router.get("/templates/plan-layout.json")
def plan_layout(principal: Principal = Depends(require("plans.read"))) -> dict[str, Any]:
    """Sheets and columns of the plan workbook (what the add-in reads and writes)."""
    return layout().raw


@router.post("/tenants/{tenantId}/bonus-plans/import", response_model=WorkbookImported,
             status_code=201)
def import_plan(tenantId: uuid.UUID, db: DbSession,
                      file: UploadFile = File(description="a filled plan template (.xlsx)"),
                      principal: Principal = Depends(require("plans.write"))
                      ) -> WorkbookImported:
    """A new draft plan from a filled workbook. 422 names the sheet, row and column of each
    cell that cannot be read; plan-level problems come back as located diagnostics."""
    same_tenant(tenantId, principal)
    data = file.file.read(service.MAX_WORKBOOK_BYTES + 1)
    result = service.import_workbook(db, principal, data)
    return WorkbookImported(**result | {"plan": PlanOut.model_validate(result["plan"])})


@router.get("/bonus-plans/{planId}/workbook", response_class=Response,
            responses={200: {"content": {service.XLSX_MEDIA_TYPE: {}}}})
def export_plan(planId: uuid.UUID, db: DbSession,
                principal: Principal = Depends(require("plans.read"))) -> Response:
    """The stored plan written into the template, with its diagnostics."""
    filename, data = service.export_workbook(db, planId)
    return _xlsx(data, filename)


@router.get("/runs/{run_id}/workbook", response_class=Response,
            responses={200: {"content": {service.XLSX_MEDIA_TYPE: {}}}})
def run_audit_workbook(run_id: uuid.UUID, request: Request, db: DbSession,
                       principal: Principal = Depends(require("runs.workbook"))) -> Response:
    """The run's frozen audit workbook: inputs, one formula column per step, the engine's
    stored values beside them, a check column, and the hashes and approvals on the cover
    (409 while the run has no results; the download is audited)."""
    filename, data = audit.audit_workbook(db, request.app.state.settings, principal, run_id)
    return _xlsx(data, filename)
