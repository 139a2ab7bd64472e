"""Routes: the caller's tenant and its users."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response

from server.modules.auth.dependencies import DbSession, Principal, require, same_tenant
from server.modules.tenants import service
from server.modules.tenants.schemas import (
    PasswordChange,
    PasswordReset,
    SessionsRevoked,
    TenantOut,
    TenantSettingsUpdate,
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
    return _tenant_out(service.get_tenant(db, tenantId))


def _tenant_out(tenant: object) -> TenantOut:
    out = TenantOut.model_validate(tenant)
    out.separation_of_duties = bool(
        tenant.metadata_.get(service.SEPARATION_OF_DUTIES, True))  # type: ignore[attr-defined]
    return out


@router.patch("/tenants/{tenantId}/settings", response_model=TenantOut)
def update_settings(
    tenantId: uuid.UUID, body: TenantSettingsUpdate, db: DbSession,
    principal: Principal = Depends(require("tenant.settings.write")),
) -> TenantOut:
    """Tenant policies: separation of duties on approvals (audited)."""
    same_tenant(tenantId, principal)
    return _tenant_out(service.update_settings(db, principal, tenantId,
                                               body.separation_of_duties))


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


@router.put("/me/password", status_code=204, response_class=Response)
def change_password(body: PasswordChange, request: Request, db: DbSession,
                    principal: Principal = Depends(require("me.read"))) -> Response:
    """Set your password; your other sessions are signed out (this one stays)."""
    service.change_password(db, principal, body.current_password, body.new_password,
                            request.app.state.settings.password_min_length)
    return Response(status_code=204)


@router.post("/me/sessions/revoke", response_model=SessionsRevoked)
def revoke_my_sessions(db: DbSession,
                       principal: Principal = Depends(require("me.read"))) -> SessionsRevoked:
    """Sign out everywhere, this session included."""
    return SessionsRevoked(revoked=service.revoke_sessions(db, principal, principal.user_id))


@router.post("/users/{userId}/password-reset", response_model=PasswordReset)
def reset_password(userId: uuid.UUID, db: DbSession,
                   principal: Principal = Depends(require("users.write"))) -> PasswordReset:
    """A new one-time password for the user (shown only here; one login, then it expires);
    the user's sessions are revoked and a lockout is lifted."""
    password = service.reset_password(db, principal, userId)
    user = service.get_user(db, userId)
    return PasswordReset(user_id=userId, one_time_password=password,
                         expires_at=user.password_expires_at)


@router.post("/users/{userId}/sessions/revoke", response_model=SessionsRevoked)
def revoke_user_sessions(userId: uuid.UUID, db: DbSession,
                         principal: Principal = Depends(require("users.write"))
                         ) -> SessionsRevoked:
    """Sign a user out everywhere (admin)."""
    return SessionsRevoked(revoked=service.revoke_sessions(db, principal, userId))
