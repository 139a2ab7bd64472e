"""Routes: /inquiries (raise, list, read, answer, resolve, reject); docs/deferrals.md."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request

from server.modules.auth.dependencies import DbSession, Principal, require
from server.modules.inquiries import service
from server.modules.inquiries.schemas import AnswerIn, InquiryIn, RejectIn, ResolveIn

router = APIRouter(tags=["inquiries"])


@router.post("/inquiries", status_code=201)
def raise_inquiry(body: InquiryIn, request: Request, db_session: DbSession,
                  principal: Principal = Depends(require("inquiries.raise"))) -> dict[str, Any]:
    """Question one line of a draft run (managers: employees of their teams)."""
    return service.out(service.raise_inquiry(
        db_session, request.app.state.settings, principal, body.run_id, body.employee_ref,
        body.question, body.step, body.input_key))


@router.get("/inquiries")
def list_inquiries(db_session: DbSession, run_id: uuid.UUID | None = None,
                   status: Literal["open", "answered", "resolved", "rejected"] | None = None,
                   principal: Principal = Depends(require("inquiries.read"))
                   ) -> list[dict[str, Any]]:
    return [service.out(i) for i in service.list_for(db_session, principal, run_id, status)]


@router.get("/inquiries/{inquiry_id}")
def get_inquiry(inquiry_id: uuid.UUID, db_session: DbSession,
                principal: Principal = Depends(require("inquiries.read"))) -> dict[str, Any]:
    return service.out(service.get(db_session, principal, inquiry_id))


@router.post("/inquiries/{inquiry_id}/answer")
def answer(inquiry_id: uuid.UUID, body: AnswerIn, db_session: DbSession,
           principal: Principal = Depends(require("inquiries.handle"))) -> dict[str, Any]:
    return service.out(service.answer(db_session, principal, inquiry_id, body.answer))


@router.post("/inquiries/{inquiry_id}/resolve")
def resolve(inquiry_id: uuid.UUID, body: ResolveIn, db_session: DbSession,
            principal: Principal = Depends(require("inquiries.handle"))) -> dict[str, Any]:
    """Resolved by the corrected re-run (linked to the inquiry)."""
    return service.out(service.resolve(db_session, principal, inquiry_id, body.resolution,
                                       body.corrected_run_id))


@router.post("/inquiries/{inquiry_id}/reject")
def reject(inquiry_id: uuid.UUID, body: RejectIn, db_session: DbSession,
           principal: Principal = Depends(require("inquiries.handle"))) -> dict[str, Any]:
    return service.out(service.reject(db_session, principal, inquiry_id, body.reason))
