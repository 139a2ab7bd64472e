"""Routes of the reports module (thin: parse, call the service, shape the response)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request

from server.db.session import DbSession
from server.modules.auth.dependencies import Principal, require, same_tenant
from server.modules.reports import signing
from server.modules.reports.schemas import SigningKeyOut

router = APIRouter(tags=["reports"])


@router.get("/tenants/{tenantId}/signing-key", response_model=SigningKeyOut)
def get_signing_key(
    tenantId: uuid.UUID,
    request: Request,
    db: DbSession,
    principal: Principal = Depends(require("reports.signing_key.read")),
) -> SigningKeyOut:
    """The tenant's public Ed25519 key that signs export bundles (created on first use)."""
    same_tenant(tenantId, principal)
    row = signing.active_key(db, request.app.state.settings, principal)
    return SigningKeyOut(**signing.public_key_document(row))
