"""Routes: the caller's tenant and its users."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends

from server.modules.auth.dependencies import DbSession, Principal, require, same_tenant
from server.modules.tenants import service
from server.modules.tenants.schemas import (
    TenantOut,
    UserCreate,
    UserCreated,
    UserList,
    UserOut,
    UserUpdate,
)

router = APIRouter(tags=["tenants"])


@router.get("/tenants/{tenantId}", response_model=TenantOut)
def get_tenant(
    tenantId: uuid.UUID, db: DbSession, principal: Principal = Depends(require("me.read"))
) -> TenantOut:
    same_tenant(tenantId, principal)
    return TenantOut.model_validate(service.get_tenant(db, tenantId))


@router.get("/tenants/{tenantId}/users", response_model=UserList)
def list_users(
    tenantId: uuid.UUID, db: DbSession, principal: Principal = Depends(require("users.read"))
) -> UserList:
    same_tenant(tenantId, principal)
    return UserList(items=[UserOut.model_validate(u) for u in service.list_users(db)])


@router.post("/tenants/{tenantId}/users", response_model=UserCreated, status_code=201)
def create_user(
    tenantId: uuid.UUID,
    body: UserCreate,
    db: DbSession,
    principal: Principal = Depends(require("users.write")),
) -> UserCreated:
    """Create a user; the response carries a one-time password, shown only here."""
    same_tenant(tenantId, principal)
    created = service.add_user(
        db,
        principal,
        email=body.email,
        role=body.role,
        display_name=body.display_name,
        teams=body.teams,
    )
    out = UserOut.model_validate(created.user).model_dump()
    return UserCreated(**out, one_time_password=created.password)


@router.patch("/users/{userId}", response_model=UserOut)
def update_user(
    userId: uuid.UUID,
    body: UserUpdate,
    db: DbSession,
    principal: Principal = Depends(require("users.write")),
) -> UserOut:
    """Change role, display name, teams or active flag (deactivation revokes tokens)."""
    changes = body.model_dump(exclude_unset=True)
    return UserOut.model_validate(service.update_user(db, principal, userId, changes))
