"""Who may see whose pay: the one rule behind every route that returns per-employee values.

Results, tapes, compare, statements, scenario deltas, bulk statement jobs, exports and the
audit workbook all ask `pay_scope(principal)` and filter by the answer:

- roles without `pay.employees.read` (readonly) see no per-employee value at all (403; they
  keep run status and totals, which are aggregates);
- a manager sees the employees whose `team` input is one of their user's teams (none when the
  plan has no `team` input);
- every other role holding the permission sees every employee of the tenant;
- aggregates (run totals' breakdowns and pool groups) shown to a manager or readonly leave
  out groups of fewer than MIN_GROUP_HEADCOUNT employees: a group of one *is* one
  employee's pay (a breakdown by employee_ref or name would list everyone's).

Routes whose permission excludes managers altogether (exports, audit workbooks) need no
filter; `tests/security/test_pay_visibility.py` walks the OpenAPI document so that a new
route returning employee values cannot skip this rule unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from server.errors import Forbidden
from server.modules.auth.permissions import Role, allowed
from server.principal import Principal

PAY_PERMISSION = "pay.employees.read"
TEAM_INPUT = "team"
MIN_GROUP_HEADCOUNT = 5


@dataclass(frozen=True)
class PayScope:
    """The employees a caller may see: every one (`teams is None`) or those of `teams`."""

    teams: frozenset[str] | None

    @property
    def everyone(self) -> bool:
        return self.teams is None

    @property
    def min_group(self) -> int:
        """The smallest group whose aggregate this caller may see."""
        return 1 if self.teams is None else MIN_GROUP_HEADCOUNT

    def admits(self, team: object) -> bool:
        """True when an employee of `team` is visible (a missing team is never a manager's)."""
        return self.teams is None or (team is not None and str(team) in self.teams)

    def visible(self, team_of: Mapping[str, object] | Iterable[tuple[str, object]]
                ) -> set[str] | None:
        """The visible refs among `employee_ref -> team` pairs; None means all of them."""
        if self.teams is None:
            return None
        pairs = team_of.items() if isinstance(team_of, Mapping) else team_of
        return {str(ref) for ref, team in pairs if self.admits(team)}


def aggregate_scope(principal: Principal) -> PayScope:
    """The scope for aggregates: like `pay_scope`, but readonly gets an empty team set
    (aggregates of large groups only) instead of a refusal."""
    if not allowed(principal.role, PAY_PERMISSION):
        return PayScope(frozenset())
    return pay_scope(principal)


def pay_scope(principal: Principal) -> PayScope:
    """THE rule: which employees' pay `principal` may read (403 when none at all)."""
    if not allowed(principal.role, PAY_PERMISSION):
        raise Forbidden(f"role '{principal.role}' lacks permission '{PAY_PERMISSION}'")
    if principal.role is Role.MANAGER:
        return PayScope(frozenset(principal.teams))
    return PayScope(None)
