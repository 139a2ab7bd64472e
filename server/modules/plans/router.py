"""Routes: bonus plans, their steps, inputs and documents; validate, lock, versions, diff,
test vectors. Thin: parse, call the service, shape the response."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from server.jsonbody import ExactNumberRoute
from server.jsonresponse import model_response
from server.modules.auth.dependencies import DbSession, Principal, require, same_tenant
from server.modules.plans import service
from server.modules.plans.schemas import (
    DocumentSaved,
    EvaluateRequest,
    EvaluateResponse,
    PlanCreate,
    PlanDiff,
    PlanDocumentIn,
    PlanInputList,
    PlanInputOut,
    PlanInputsPut,
    PlanOut,
    PlanPage,
    PlanUpdate,
    Status,
    StepCreate,
    StepList,
    StepOut,
    StepReorder,
    StepUpdate,
    ValidationResult,
)

router = APIRouter(tags=["bonus plans"], route_class=ExactNumberRoute)
PLAN = "/bonus-plans/{planId}"
_HEADER = [name for name in PlanOut.model_fields if name != "payout"]  # a list's columns


def _validation(plan: Any) -> ValidationResult:
    compiled, found = service.diagnostics_for(plan)
    return ValidationResult(
        valid=compiled is not None,
        diagnostics=found,
        plan_hash=compiled.plan_hash if compiled else None,
    )


@router.post("/tenants/{tenantId}/bonus-plans", response_model=PlanOut, status_code=201)
def create_plan(
    tenantId: uuid.UUID,
    body: PlanCreate,
    db: DbSession,
    principal: Principal = Depends(require("plans.write")),
) -> PlanOut:
    """PRD §15.1: a new draft; `document` may carry a whole ENGINE.md §1 plan."""
    same_tenant(tenantId, principal)
    fields = body.model_dump(exclude={"document"})
    document = body.document.model_dump() if body.document else None
    return PlanOut.model_validate(service.create_plan(db, principal, fields, document))


@router.get("/tenants/{tenantId}/bonus-plans", response_model=PlanPage)
def list_plans(
    tenantId: uuid.UUID,
    db: DbSession,
    principal: Principal = Depends(require("plans.read")),
    status: Status | None = None,
    name: str | None = Query(None, max_length=200, description="part of the name, any case"),
    effective_on: date | None = Query(None, description="plans in effect on this date"),
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(None, max_length=200),
) -> Response:
    """Newest first; pass `next_cursor` back as `cursor` for the next page."""
    same_tenant(tenantId, principal)
    plans, next_cursor = service.list_plans(
        db, status=status, name=name, effective_on=effective_on, limit=limit, cursor=cursor
    )
    items = [PlanOut.model_validate({**{field: getattr(plan, field) for field in _HEADER},
                                     "payout": payout}) for plan, payout in plans]
    return model_response(PlanPage(items=items, next_cursor=next_cursor))


@router.get(PLAN, response_model=PlanOut)
def get_plan(
    planId: uuid.UUID, db: DbSession, principal: Principal = Depends(require("plans.read"))
) -> PlanOut:
    return PlanOut.model_validate(service.get_plan(db, planId))


@router.patch(PLAN, response_model=PlanOut)
def update_plan(
    planId: uuid.UUID,
    body: PlanUpdate,
    db: DbSession,
    principal: Principal = Depends(require("plans.write")),
) -> PlanOut:
    """Change a draft's name, dates, notes, currency or payout step (409 once locked)."""
    changes = body.model_dump(exclude_unset=True)
    return PlanOut.model_validate(service.update_plan(db, principal, planId, changes))


@router.get(PLAN + "/steps", response_model=StepList)
def list_steps(
    planId: uuid.UUID, db: DbSession, principal: Principal = Depends(require("plans.read"))
) -> StepList:
    plan = service.get_plan(db, planId)
    return StepList(items=[StepOut.model_validate(s) for s in service.list_steps(db, plan.id)])


@router.post(PLAN + "/steps", response_model=StepOut, status_code=201)
def add_step(
    planId: uuid.UUID,
    body: StepCreate,
    db: DbSession,
    principal: Principal = Depends(require("plans.write")),
) -> StepOut:
    """PRD §15.2. 422 errors name the field (`loc`) and, for expressions, line and column."""
    fields = body.model_dump(exclude_unset=True) | {"step_order": body.step_order}
    return StepOut.model_validate(service.add_step(db, principal, planId, fields))


@router.patch(PLAN + "/steps/{stepId}", response_model=StepOut)
def update_step(
    planId: uuid.UUID,
    stepId: uuid.UUID,
    body: StepUpdate,
    db: DbSession,
    principal: Principal = Depends(require("plans.write")),
) -> StepOut:
    changes = body.model_dump(exclude_unset=True)
    return StepOut.model_validate(service.update_step(db, principal, planId, stepId, changes))


@router.delete(PLAN + "/steps/{stepId}", status_code=204, response_class=Response)
def delete_step(
    planId: uuid.UUID,
    stepId: uuid.UUID,
    db: DbSession,
    principal: Principal = Depends(require("plans.write")),
) -> Response:
    service.delete_step(db, principal, planId, stepId)
    return Response(status_code=204)


@router.post(PLAN + "/steps/reorder", response_model=StepList)
def reorder_steps(
    planId: uuid.UUID,
    body: StepReorder,
    db: DbSession,
    principal: Principal = Depends(require("plans.write")),
) -> StepList:
    steps = service.reorder_steps(db, principal, planId, body.step_ids)
    return StepList(items=[StepOut.model_validate(s) for s in steps])


@router.get(PLAN + "/inputs", response_model=PlanInputList)
def list_plan_inputs(
    planId: uuid.UUID, db: DbSession, principal: Principal = Depends(require("plans.read"))
) -> PlanInputList:
    plan = service.get_plan(db, planId)
    return PlanInputList(items=[PlanInputOut(**i) for i in service.plan_inputs(db, plan)])


@router.put(PLAN + "/inputs", response_model=PlanInputList)
def replace_plan_inputs(
    planId: uuid.UUID,
    body: PlanInputsPut,
    db: DbSession,
    principal: Principal = Depends(require("plans.write")),
) -> PlanInputList:
    """Declare the draft's inputs from the tenant's catalog (by key), replacing the list."""
    declared = [item.model_dump() for item in body.inputs]
    plan = service.replace_inputs(db, principal, planId, declared)
    return PlanInputList(items=[PlanInputOut(**i) for i in service.plan_inputs(db, plan)])


@router.put(PLAN + "/document", response_model=DocumentSaved)
def replace_document(
    planId: uuid.UUID,
    body: PlanDocumentIn,
    db: DbSession,
    principal: Principal = Depends(require("plans.write")),
) -> DocumentSaved:
    """Replace inputs, parameters, steps and payout from one plan document (the add-in's
    form). An invalid plan is still saved; `diagnostics` say what to fix. A body without a
    `deferral` key keeps the stored deferral policy (the workbook does not carry it)."""
    document = body.model_dump(exclude=None if "deferral" in body.model_fields_set
                               else {"deferral"})
    plan, compiled, found = service.replace_document(db, principal, planId, document)
    return DocumentSaved(
        valid=compiled is not None,
        diagnostics=found,
        plan_hash=compiled.plan_hash if compiled else None,
        plan=PlanOut.model_validate(plan),
    )


@router.get(PLAN + "/document")
def get_document(
    planId: uuid.UUID, db: DbSession, principal: Principal = Depends(require("plans.read"))
) -> dict[str, Any]:
    """The stored ENGINE.md §1 document of this version."""
    return service.document_of(service.get_plan(db, planId))


@router.post(PLAN + "/validate", response_model=ValidationResult)
def validate_plan(
    planId: uuid.UUID, db: DbSession, principal: Principal = Depends(require("plans.read"))
) -> ValidationResult:
    """Every engine check on the stored plan; changes nothing."""
    return _validation(service.get_plan(db, planId))


@router.post(PLAN + "/lock", response_model=PlanOut)
def lock_plan(
    planId: uuid.UUID, db: DbSession, principal: Principal = Depends(require("plans.lock"))
) -> PlanOut:
    """PRD §15.3: freeze a valid draft (409 with the diagnostics while invalid)."""
    return PlanOut.model_validate(service.lock_plan(db, principal, planId))


@router.post(PLAN + "/versions", response_model=PlanOut, status_code=201)
def new_version(
    planId: uuid.UUID, db: DbSession, principal: Principal = Depends(require("plans.write"))
) -> PlanOut:
    """A new draft version (same name, version + 1) copied from a locked plan."""
    return PlanOut.model_validate(service.new_version(db, principal, planId))


@router.get(PLAN + "/diff", response_model=PlanDiff)
def diff_plans(
    planId: uuid.UUID,
    db: DbSession,
    against: uuid.UUID = Query(description="the other plan (the 'before' side)"),
    principal: Principal = Depends(require("plans.read")),
) -> PlanDiff:
    return PlanDiff.model_validate(service.diff_plans(db, planId, against))


@router.post(PLAN + "/evaluate", response_model=EvaluateResponse)
def evaluate(
    planId: uuid.UUID,
    body: EvaluateRequest,
    db: DbSession,
    principal: Principal = Depends(require("plans.read")),
) -> EvaluateResponse:
    """Test vectors with the reference engine; per-row values and tapes; nothing stored."""
    result = service.evaluate(db, planId, body.rows, body.parameters)
    return EvaluateResponse.model_validate(result)
