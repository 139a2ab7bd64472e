"""The one permission table every route consults (`require("plans.write")`).

Roles: admin, hr, manager, finance, auditor, readonly. A permission missing from this table
is a programming error raised at import time by `require`. `Role` itself lives in
`server.principal` (re-exported here).
"""

from __future__ import annotations

from server.principal import Role

__all__ = ["EVERYONE", "PERMISSIONS", "ROLE_RANK", "Role", "allowed"]

# Privilege order, used only to stop a user raising their own role.
ROLE_RANK: dict[Role, int] = {
    Role.READONLY: 0,
    Role.AUDITOR: 1,
    Role.MANAGER: 2,
    Role.FINANCE: 3,
    Role.HR: 4,
    Role.ADMIN: 5,
}

EVERYONE = frozenset(Role)
A, H, M, F, AU = Role.ADMIN, Role.HR, Role.MANAGER, Role.FINANCE, Role.AUDITOR

PERMISSIONS: dict[str, frozenset[Role]] = {
    "me.read": EVERYONE,
    "users.read": frozenset({A}),
    "users.write": frozenset({A}),
    "tenant.settings.write": frozenset({A}),
    "audit.read": frozenset({A, AU}),
    "catalog.read": EVERYONE,
    "catalog.write": frozenset({A, H}),
    "plans.read": EVERYONE,
    "plans.write": frozenset({A, H}),
    "plans.lock": frozenset({A, H}),
    "uploads.read": frozenset({A, H, F, AU}),
    "uploads.write": frozenset({A, H}),
    "runs.read": EVERYONE,
    # Per-employee pay (results, tapes, compare, statements): never readonly; a manager
    # only for their teams (server.modules.auth.access.pay_scope applies the rule).
    "pay.employees.read": frozenset({A, H, M, F, AU}),
    "runs.create": frozenset({A, H, F}),
    "runs.approve.manager": frozenset({M}),
    "runs.approve.hr": frozenset({H}),
    "runs.approve.finance": frozenset({F}),
    "runs.finalize": frozenset({A, F}),
    "reports.read": frozenset({A, H, M, F, AU}),
    "reports.export": frozenset({A, H, F, AU}),
    "reports.signing_key.read": EVERYONE,
    "runs.export": frozenset({A, F, AU}),
    # The frozen audit workbook holds every employee of the run, so not managers (who see
    # only their teams' statements) and not readonly.
    "runs.workbook": frozenset({A, H, F, AU}),
    # The platform's error-budget report (no tenant data in it).
    "ops.slo.read": frozenset({A}),
    # Deferrals (docs/deferrals.md): every employee's deferred pay, so not managers/readonly.
    "deferrals.read": frozenset({A, H, F, AU}),
    "fund_navs.write": frozenset({A, H, F}),
    "vesting.create": frozenset({A, H, F}),
    "deferrals.propose": frozenset({A, H}),
    "deferrals.decide": frozenset({A, H, F}),
    "inquiries.read": frozenset({A, H, M, F, AU}),
    "inquiries.raise": frozenset({A, H, M}),
    "inquiries.handle": frozenset({A, H}),
    "adjustments.create": frozenset({A, H, F}),
}


def allowed(role: Role | str, permission: str) -> bool:
    """True when `role` holds `permission` (unknown permissions raise KeyError)."""
    return Role(role) in PERMISSIONS[permission]
