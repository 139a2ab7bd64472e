"""Routes: the tenant's input catalog."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Response

from server.jsonbody import ExactNumberRoute
from server.modules.auth.dependencies import DbSession, Principal, require, same_tenant
from server.modules.catalog import service
from server.modules.catalog.schemas import (
    CatalogInputCreate,
    CatalogInputOut,
    CatalogInputUpdate,
    CatalogList,
)

router = APIRouter(tags=["input catalog"], route_class=ExactNumberRoute)


@router.get("/tenants/{tenantId}/input-catalog", response_model=CatalogList)
def list_inputs(
    tenantId: uuid.UUID, db: DbSession, principal: Principal = Depends(require("catalog.read"))
) -> CatalogList:
    same_tenant(tenantId, principal)
    return CatalogList(items=[CatalogInputOut.model_validate(e) for e in service.list_inputs(db)])


@router.post("/tenants/{tenantId}/input-catalog", response_model=CatalogInputOut, status_code=201)
def create_input(
    tenantId: uuid.UUID,
    body: CatalogInputCreate,
    db: DbSession,
    principal: Principal = Depends(require("catalog.write")),
) -> CatalogInputOut:
    """Define an input key (a legal DSL name) with its dtype; 409 if the key exists."""
    same_tenant(tenantId, principal)
    return CatalogInputOut.model_validate(service.create_input(db, principal, body.model_dump()))


@router.patch("/input-catalog/{inputId}", response_model=CatalogInputOut)
def update_input(
    inputId: uuid.UUID,
    body: CatalogInputUpdate,
    db: DbSession,
    principal: Principal = Depends(require("catalog.write")),
) -> CatalogInputOut:
    """Change an input no plan uses yet (409 naming the plans that use it)."""
    changes = body.model_dump(exclude_unset=True)
    return CatalogInputOut.model_validate(service.update_input(db, principal, inputId, changes))


@router.delete("/input-catalog/{inputId}", status_code=204, response_class=Response)
def delete_input(
    inputId: uuid.UUID, db: DbSession, principal: Principal = Depends(require("catalog.write"))
) -> Response:
    """Remove an input no plan uses (409 naming the plans that use it)."""
    service.delete_input(db, principal, inputId)
    return Response(status_code=204)
