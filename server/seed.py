"""Demo data for `paysheet serve` / `paysheet seed-demo`: tenant "Demo Capital", one user per
role, and the sample plan when both the sample file and the plans module exist.

Demo passwords are random; they are written to `<data_dir>/demo-logins.json` (mode 0600) so
later runs can print them again. If that file is lost the demo users get new passwords.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy import select, text

from server.db.session import system_session, tenant_session
from server.modules.auth.permissions import Role
from server.modules.auth.service import hash_password, new_password
from server.modules.tenants import service as tenants
from server.modules.tenants.models import User
from server.principal import Principal

DEMO_TENANT = "Demo Capital"
DEMO_DOMAIN = "demo.paysheet.local"
SAMPLE_PLAN = Path(__file__).resolve().parents[1] / "samples" / "plans" / "fund_bonus.json"
DEMO_TEAMS = {Role.MANAGER: ["EQ-LON", "FI-NYC"]}
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DemoLogins:
    tenant_id: uuid.UUID
    passwords: dict[str, str]  # email -> password
    created: bool


def demo_email(role: Role) -> str:
    return f"{role.value}@{DEMO_DOMAIN}"


def _existing_demo_tenant() -> uuid.UUID | None:
    with system_session() as session:
        row = session.execute(
            text("select tenant_id from comp.auth_login_candidates(:e)"),
            {"e": demo_email(Role.ADMIN)},
        ).first()
    return row.tenant_id if row else None


def _read_logins(path: Path, tenant_id: uuid.UUID) -> dict[str, str] | None:
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    return saved["passwords"] if saved.get("tenant_id") == str(tenant_id) else None


def _write_logins(path: Path, tenant_id: uuid.UUID, passwords: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"tenant_id": str(tenant_id), "passwords": passwords}, handle, indent=2)


def _reset_passwords(tenant_id: uuid.UUID) -> dict[str, str]:
    passwords: dict[str, str] = {}
    with tenant_session(tenant_id) as session:
        for user in session.scalars(select(User).where(User.email.like(f"%@{DEMO_DOMAIN}"))):
            passwords[user.email] = new_password()
            user.password_hash = hash_password(passwords[user.email])
    _make_permanent(tenant_id)
    return passwords


def _make_permanent(tenant_id: uuid.UUID) -> None:
    """Demo logins are printed on every start, so they are not one-time passwords."""
    with tenant_session(tenant_id) as session:
        for user in session.scalars(select(User).where(User.email.like(f"%@{DEMO_DOMAIN}"))):
            user.password_is_temporary = False
            user.password_expires_at = None


def seed_demo(data_dir: Path) -> DemoLogins:
    """Create the demo tenant once; on later runs return (or reset) its logins."""
    logins_file = data_dir / "demo-logins.json"
    existing = _existing_demo_tenant()
    if existing is not None:
        passwords = _read_logins(logins_file, existing)
        if passwords is None:
            passwords = _reset_passwords(existing)
            _write_logins(logins_file, existing, passwords)
        return DemoLogins(existing, passwords, created=False)

    created = tenants.create_tenant(DEMO_TENANT, demo_email(Role.ADMIN), "Demo Admin")
    tenant_id = created.tenant.id
    passwords = {created.admin.user.email: created.admin.password}
    with tenant_session(tenant_id) as session:
        for role in Role:
            if role is Role.ADMIN:
                continue
            new_user = tenants.add_user(
                session,
                None,
                email=demo_email(role),
                role=role,
                display_name=f"Demo {role.value.title()}",
                teams=DEMO_TEAMS.get(role, []),
            )
            passwords[new_user.user.email] = new_user.password
    _make_permanent(tenant_id)
    _write_logins(logins_file, tenant_id, passwords)
    _seed_sample_plan(tenant_id, created.admin.user.id)
    return DemoLogins(tenant_id, passwords, created=True)


def _seed_sample_plan(tenant_id: uuid.UUID, admin_id: uuid.UUID) -> None:
    if not SAMPLE_PLAN.exists():
        log.info("seed_plan_skipped", reason=f"{SAMPLE_PLAN} not found")
        return
    if importlib.util.find_spec("server.modules.plans.service") is None:
        log.info("seed_plan_skipped", reason="server.modules.plans is not installed")
        return
    plans = importlib.import_module("server.modules.plans.service")
    principal = Principal(admin_id, tenant_id, Role.ADMIN, demo_email(Role.ADMIN), "Demo Admin", ())
    document = json.loads(SAMPLE_PLAN.read_text())
    with tenant_session(tenant_id) as session:
        plans.create_plan_from_document(session, principal, document)
    log.info("seed_plan_created", plan=document.get("name"))
