"""Which of a run's employees the caller may see (the rule is `auth.access.pay_scope`).

A manager's scope is by team, and an employee's team is the `team` input of the data the run
was computed over. That data is immutable once a run has results, so the run's
`employee_ref -> team` map is read once per process and cached (bounded): a manager's second
page of results costs no Parquet read.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import polars as pl

from server.errors import NotFound
from server.modules.auth.access import TEAM_INPUT, PayScope, aggregate_scope, pay_scope
from server.modules.runs.models import PlanRun
from server.principal import Principal

_CACHE_SIZE = 64
_teams: OrderedDict[tuple[uuid.UUID, uuid.UUID, str], dict[str, str | None]] = OrderedDict()
_lock = threading.Lock()


def team_map(run: PlanRun, load_frame: Callable[[], pl.DataFrame]) -> dict[str, str | None]:
    """`employee_ref -> team` of a computed run's input data (empty teams: no `team` input);
    `load_frame` reads the run's inputs on a cache miss."""
    key = (run.tenant_id, run.id, run.snapshot_hash)
    with _lock:
        if key in _teams:
            _teams.move_to_end(key)
            return _teams[key]
    frame = load_frame()
    refs = [str(ref) for ref in frame["employee_ref"].to_list()]
    teams = (frame[TEAM_INPUT].cast(pl.String).to_list() if TEAM_INPUT in frame.columns
             else [None] * len(refs))
    mapping = dict(zip(refs, teams, strict=True))
    with _lock:
        _teams[key] = mapping
        while len(_teams) > _CACHE_SIZE:
            _teams.popitem(last=False)
    return mapping


def visible_refs(principal: Principal, run: PlanRun,
                 load_frame: Callable[[], pl.DataFrame]) -> set[str] | None:
    """The refs of `run` the caller may see, None for all (403 for roles that see none)."""
    scope: PayScope = pay_scope(principal)
    if scope.everyone:
        return None
    return scope.visible(team_map(run, load_frame))


def ensure_visible(principal: Principal, run: PlanRun, employee_ref: str,
                   load_frame: Callable[[], pl.DataFrame]) -> None:
    """404 (never 403: no existence leak) unless the caller may see this employee."""
    refs = visible_refs(principal, run, load_frame)
    if refs is not None and employee_ref not in refs:
        raise NotFound("employee", f"employee '{employee_ref}' is not in run {run.id}")


def _large(groups: list[dict[str, Any]], least: int) -> list[dict[str, Any]]:
    return [g for g in groups if int(g.get("headcount") or 0) >= least]


def sees_all_groups(principal: Principal) -> bool:
    """Whether `aggregate_view` leaves the caller's totals as they are."""
    return aggregate_scope(principal).min_group <= 1


def aggregate_view(totals: dict[str, Any] | None, principal: Principal
                   ) -> dict[str, Any] | None:
    """Run totals as `principal` may see them: breakdown values and pool groups of fewer
    than the scope's minimum headcount are left out (and counted in `hidden_groups`)."""
    if not totals or sees_all_groups(principal):
        return totals
    least = aggregate_scope(principal).min_group
    view = dict(totals)
    hidden = 0
    breakdowns = {}
    for name, groups in (totals.get("breakdowns") or {}).items():
        kept = _large(groups, least)
        hidden += len(groups) - len(kept)
        breakdowns[name] = kept
    pools = []
    for pool in totals.get("pools") or []:
        kept = _large(pool.get("groups") or [], least)
        hidden += len(pool.get("groups") or []) - len(kept)
        pools.append({**pool, "groups": kept})
    view.update(breakdowns=breakdowns, pools=pools, hidden_groups=hidden)
    return view


_EMPLOYEE_IN_ERROR = re.compile(r"for employee '[^']*'")


def error_view(error: str | None, principal: Principal | None) -> str | None:
    """A failed run's error as `principal` may see it: the engine names the employee whose
    row failed, which only callers who see every employee get (a manager could otherwise
    learn who is in another team's data, readonly who is paid at all)."""
    if error is None or principal is None or aggregate_scope(principal).everyone:
        return error
    return _EMPLOYEE_IN_ERROR.sub("for one employee (named to HR and admins)", error)
