"""Tenants and their users: creation, listing, role changes, deactivation.

Invariants enforced here: nobody raises their own role, and a tenant always keeps at least
one active admin (demoting or deactivating the last one answers 409).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db.session import tenant_session
from server.errors import Conflict, Forbidden, NotFound, UnprocessableEntity
from server.modules.audit.service import record_event
from server.modules.auth.permissions import ROLE_RANK, Role
from server.modules.auth.service import (
    forget_sessions,
    hash_password,
    new_password,
    one_time_password_expiry,
    revoke_user_tokens,
    verify_password,
)
from server.modules.tenants.identity import EMAIL_RE, user_snapshot
from server.modules.tenants.identity import find_sign_in_user as find_sign_in_user
from server.modules.tenants.identity import provision_sso_user as provision_sso_user
from server.modules.tenants.identity import sync_sso_user as sync_sso_user
from server.modules.tenants.models import Tenant, User
from server.principal import Principal

TEAM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def normalise_email(email: str, loc: list[str | int]) -> str:
    cleaned = email.strip().lower()
    if not EMAIL_RE.match(cleaned):
        raise UnprocessableEntity(
            [{"loc": loc, "msg": "not an email address", "type": "value_error"}]
        )
    return cleaned


@dataclass(frozen=True)
class NewUser:
    user: User
    password: str


@dataclass(frozen=True)
class NewTenant:
    tenant: Tenant
    admin: NewUser


def create_tenant(name: str, admin_email: str, admin_display_name: str | None = None) -> NewTenant:
    """A tenant and its first admin, in one transaction (CLI and seeding)."""
    if not name.strip():
        raise UnprocessableEntity(
            [{"loc": ["name"], "msg": "must not be empty", "type": "value_error"}]
        )
    tenant_id = uuid.uuid4()
    with tenant_session(tenant_id) as session:
        tenant = Tenant(id=tenant_id, name=name.strip(), is_active=True, metadata_={})
        session.add(tenant)
        session.flush()
        record_event(
            session,
            principal_or_actor_id=None,
            action="tenant.create",
            entity="tenant",
            entity_id=tenant_id,
            after={"name": tenant.name},
        )
        admin = add_user(
            session, None, email=admin_email, role=Role.ADMIN, display_name=admin_display_name
        )
    return NewTenant(tenant, admin)


def get_tenant(session: Session, tenant_id: uuid.UUID) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("tenant")
    return tenant


SEPARATION_OF_DUTIES = "separation_of_duties"


def separation_of_duties(session: Session, tenant_id: uuid.UUID) -> bool:
    """Whether the tenant enforces separation of duties on approvals (on unless turned off)."""
    return bool(get_tenant(session, tenant_id).metadata_.get(SEPARATION_OF_DUTIES, True))


def update_settings(session: Session, principal: Principal, tenant_id: uuid.UUID,
                    separation: bool) -> Tenant:
    """Turn separation of duties on or off for the tenant (audited with before/after)."""
    tenant = get_tenant(session, tenant_id)
    before = bool(tenant.metadata_.get(SEPARATION_OF_DUTIES, True))
    tenant.metadata_ = {**tenant.metadata_, SEPARATION_OF_DUTIES: separation}
    record_event(session, principal_or_actor_id=principal, action="tenant.settings",
                 entity="tenant", entity_id=tenant_id, before={SEPARATION_OF_DUTIES: before},
                 after={SEPARATION_OF_DUTIES: separation})
    session.flush()
    return tenant


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.created_at, User.email)))


@dataclass(frozen=True)
class Person:
    """How a user is named to others: in approvals histories and on audit workbooks."""

    display_name: str | None
    email: str

    @property
    def name(self) -> str:
        """The display name, or the email for a user who has none."""
        return self.display_name or self.email


def people(session: Session, user_ids: set[uuid.UUID]) -> dict[str, Person]:
    """user id (text) → Person, for the ids that are users of the session's tenant (the
    session filters on its tenant, RLS too: another tenant's user is never named; ids that
    match nobody are left out)."""
    if not user_ids:
        return {}
    rows = session.execute(select(User.id, User.display_name, User.email)
                           .where(User.id.in_(user_ids))).all()
    return {str(row.id): Person(row.display_name, row.email) for row in rows}


def get_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.scalar(select(User).where(User.id == user_id))
    if user is None:
        raise NotFound("user")
    return user


def add_user(
    session: Session,
    actor: Principal | None,
    *,
    email: str,
    role: Role,
    display_name: str | None = None,
    teams: list[str] | None = None,
    password: str | None = None,
) -> NewUser:
    """Create a user with a one-time password (returned once, stored as argon2 hash; it
    works for one login before it expires). An explicit `password` is a permanent one."""
    email = normalise_email(email, ["body", "email"])
    teams = _checked_teams(teams or [])
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user with email {email} already exists")
    temporary = password is None
    password = password or new_password()
    user = User(
        email=email,
        role=Role(role).value,
        display_name=display_name,
        teams=teams,
        is_active=True,
        password_hash=hash_password(password),
        password_is_temporary=temporary,
        password_expires_at=one_time_password_expiry() if temporary else None,
    )
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError as exc:
        raise Conflict(f"a user with email {email} already exists") from exc
    record_event(
        session,
        principal_or_actor_id=actor,
        action="user.create",
        entity="user",
        entity_id=user.id,
        after=user_snapshot(user),
    )
    return NewUser(user, password)


def _checked_teams(teams: list[str]) -> list[str]:
    for index, team in enumerate(teams):
        if not TEAM_RE.match(team):
            raise UnprocessableEntity(
                [
                    {
                        "loc": ["body", "teams", index],
                        "msg": "team codes are 1-64 letters, digits, _ . -",
                        "type": "value_error",
                    }
                ]
            )
    return sorted(set(teams))


def _active_admin_ids(session: Session) -> list[uuid.UUID]:
    """Active admins of the tenant, row-locked so concurrent demotions serialise."""
    return list(
        session.scalars(
            select(User.id)
            .where(User.role == Role.ADMIN.value, User.is_active.is_(True))
            .order_by(User.id)
            .with_for_update()
        )
    )


def update_user(
    session: Session,
    actor: Principal,
    user_id: uuid.UUID,
    changes: dict[str, object],
) -> User:
    """Apply role / display_name / teams / is_active changes under the invariants above."""
    user = get_user(session, user_id)
    before = user_snapshot(user)
    new_role = Role(changes["role"]) if changes.get("role") is not None else Role(user.role)
    deactivating = changes.get("is_active") is False and user.is_active
    if user.id == actor.user_id and ROLE_RANK[new_role] > ROLE_RANK[Role(user.role)]:
        raise Forbidden("you cannot raise your own role")
    loses_admin = (
        user.role == Role.ADMIN.value
        and user.is_active
        and (new_role != Role.ADMIN or deactivating)
    )
    if loses_admin and _active_admin_ids(session) == [user.id]:
        raise Conflict("this is the tenant's last active admin; promote another admin first")
    user.role = new_role.value
    if "display_name" in changes:
        user.display_name = changes["display_name"]  # type: ignore[assignment]
    if changes.get("teams") is not None:
        user.teams = _checked_teams(list(changes["teams"]))  # type: ignore[arg-type]
    if changes.get("is_active") is not None:
        user.is_active = bool(changes["is_active"])
    if deactivating:
        revoke_user_tokens(session, user.id)
    forget_sessions(session, user.id)  # a cached session would keep the old role or teams
    session.flush()
    after = user_snapshot(user)
    if after != before:
        record_event(
            session,
            principal_or_actor_id=actor,
            action="user.update",
            entity="user",
            entity_id=user.id,
            before=before,
            after=after,
        )
    return user


def check_password_policy(password: str, min_length: int, loc: list[str | int]) -> None:
    """422 naming the field when a new password is too short or only one kind of character."""
    problems = []
    if len(password) < min_length:
        problems.append(f"at least {min_length} characters")
    if len(set(password)) < 4:
        problems.append("more than three distinct characters")
    if problems:
        raise UnprocessableEntity([{"loc": loc, "msg": "the password needs " +
                                    " and ".join(problems), "type": "value_error"}])


def change_password(session: Session, principal: Principal, current: str | None, new: str,
                    min_length: int) -> int:
    """Set the caller's password. The current one is required unless the caller signed in
    with a one-time password (consumed at that login). Every other token of the user is
    revoked; returns how many."""
    user = get_user(session, principal.user_id)
    if user.password_hash is not None and not (
            current is not None and verify_password(user.password_hash, current)):
        raise Forbidden("the current password is wrong")
    check_password_policy(new, min_length, ["body", "new_password"])
    user.password_hash = hash_password(new)
    user.password_is_temporary = False
    user.password_expires_at = None
    revoked = revoke_user_tokens(session, user.id, keep=principal.token_id)
    record_event(session, principal_or_actor_id=principal, action="user.password_change",
                 entity="user", entity_id=user.id, after={"revoked_tokens": revoked})
    return revoked


def reset_password(session: Session, actor: Principal, user_id: uuid.UUID) -> str:
    """An admin gives the user a new one-time password (returned once) and signs them out
    everywhere; the lockout counters are cleared."""
    user = get_user(session, user_id)
    password = new_password()
    user.password_hash = hash_password(password)
    user.password_is_temporary = True
    user.password_expires_at = one_time_password_expiry()
    user.failed_logins = 0
    user.locked_until = None
    revoked = revoke_user_tokens(session, user.id)
    record_event(session, principal_or_actor_id=actor, action="user.password_reset",
                 entity="user", entity_id=user.id, after={"revoked_tokens": revoked})
    return password


def revoke_sessions(session: Session, actor: Principal, user_id: uuid.UUID) -> int:
    """Sign a user out everywhere (their own request, or an admin's); returns the count."""
    user = get_user(session, user_id)
    revoked = revoke_user_tokens(session, user.id)
    record_event(session, principal_or_actor_id=actor, action="user.sessions_revoke",
                 entity="user", entity_id=user.id, after={"revoked_tokens": revoked})
    return revoked
