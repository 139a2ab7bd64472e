"""Users seen through an identity provider: found by subject or verified email, created just
in time, and their role and teams kept in line with the provider's groups.

Used by the `sso` area through `tenants.service`. The same invariants as manual changes hold:
the tenant keeps at least one active admin, and every change is an audit event. What such an
event records about a user (`user_snapshot`) and the email check live here, for manual changes
too: tenants.service imports this module, not the other way round.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.errors import Conflict, Unauthorized
from server.modules.audit.service import record_event
from server.modules.auth.permissions import Role
from server.modules.tenants.models import User

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def user_snapshot(user: User) -> dict[str, object]:
    """What the audit log records about a user (never the password hash)."""
    return {
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role,
        "teams": list(user.teams or []),
        "is_active": user.is_active,
    }


def _snapshot(user: User) -> dict[str, object]:
    """A user as the provider's sign-ins change it: with the subject it is linked to."""
    return {**user_snapshot(user), "oidc_subject": user.oidc_subject}


def find_sign_in_user(session: Session, subject: str, email: str | None,
                      email_verified: bool) -> User | None:
    """The user linked to `subject`, else the one with this email when the provider vouches
    for the email (`email_verified`); None when neither exists. A user already linked to
    another subject is never taken over by email."""
    user = session.scalar(select(User).where(User.oidc_subject == subject))
    if user is None and email and email_verified:
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is not None and user.oidc_subject not in (None, subject):
            raise Unauthorized(
                f"the Paysheet account {user.email} is linked to another identity at the "
                "provider; an admin must unlink it first")
    if user is not None and not user.is_active:
        raise Unauthorized(f"the Paysheet account {user.email} is deactivated")
    return user


def provision_sso_user(session: Session, *, subject: str, email: str,
                       display_name: str | None, role: Role, teams: list[str]) -> User:
    """Create the user of a first sign-in (no local password: the provider vouches)."""
    email = email.strip().lower()
    if not EMAIL_RE.match(email):
        raise Unauthorized(f"the provider's email claim {email[:80]!r} is not an email address")
    user = User(email=email, display_name=display_name, role=role.value,
                teams=sorted(set(teams)), is_active=True, password_hash=None,
                oidc_subject=subject)
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError as exc:
        raise Conflict(f"a user with email {email} already exists") from exc
    record_event(session, principal_or_actor_id=user.id, action="user.create",
                 entity="user", entity_id=user.id,
                 after={**_snapshot(user), "source": "oidc just-in-time provisioning"})
    return user


def _last_active_admin(session: Session, user: User) -> bool:
    admins = session.scalars(
        select(User.id).where(User.role == Role.ADMIN.value, User.is_active.is_(True))
        .with_for_update()).all()
    return list(admins) == [user.id]


def sync_sso_user(session: Session, user: User, *, subject: str, role: Role,
                  teams: list[str], display_name: str | None) -> User:
    """Link the subject and apply the role and teams the provider's groups map to."""
    before = _snapshot(user)
    if user.role == Role.ADMIN.value and role != Role.ADMIN and _last_active_admin(session, user):
        raise Conflict(
            f"the group mapping gives {user.email} the role '{role.value}', but they are the "
            "tenant's last active admin; map one of their groups to admin or add another admin")
    user.oidc_subject = subject
    user.role = role.value
    user.teams = sorted(set(teams))
    if display_name:
        user.display_name = display_name
    session.flush()
    after = _snapshot(user)
    if after != before:
        record_event(session, principal_or_actor_id=user.id, action="user.update",
                     entity="user", entity_id=user.id, before=before,
                     after={**after, "source": "oidc sign-in (group mapping)"})
    return user
