"""The approvals state machine of a run, with role gates and four-eyes.

    draft ─manager_approve→ manager_approved ─hr_approve→ hr_approved
          ─finance_approve→ finance_approved ─finalize→ finalized
    reject: from draft, manager_approved, hr_approved or finance_approved back to draft

Checks, in order (the first that fails answers): the caller's role may take this kind of
action at all (403); the run's state allows the action (409); for a reject, the caller holds
the gate of the step the run waits for (403); four-eyes (403): whoever started the run can
neither approve nor finalize it; with separation of duties (per tenant, on by default:
`tenants.metadata.separation_of_duties`) nobody approves two stages of one approval round (a
reject starts a new round) and nobody who approved a run finalizes it; a run with null
payouts cannot be approved (409 with the count). Every transition is appended to
`approvals_state.history` with actor, role, time and comment, and audited; refusals are
audited too. The snapshot hash is frozen from the first approval on (migration 0020's
trigger), and finalize freezes the results (0001's trigger).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from server.errors import Conflict, Forbidden, ProblemError, UnprocessableEntity
from server.modules.adjustments import service as adjustments
from server.modules.audit.service import record_event, record_refusal
from server.modules.auth.permissions import allowed
from server.modules.deferrals import service as deferrals
from server.modules.inquiries import service as inquiries
from server.modules.runs import service as runs
from server.modules.runs.models import PlanRun
from server.modules.runs.schemas import RunOut
from server.modules.tenants import service as tenants
from server.principal import Principal


@dataclass(frozen=True)
class Transition:
    source: str
    target: str
    permission: str


APPROVALS = {
    "manager_approve": Transition("draft", "manager_approved", "runs.approve.manager"),
    "hr_approve": Transition("manager_approved", "hr_approved", "runs.approve.hr"),
    "finance_approve": Transition("hr_approved", "finance_approved", "runs.approve.finance"),
}
FINALIZE = Transition("finance_approved", "finalized", "runs.finalize")
# A reject is made by whoever holds the gate of the step the run is waiting for.
REJECT_GATES = {
    "draft": "runs.approve.manager",
    "manager_approved": "runs.approve.hr",
    "hr_approved": "runs.approve.finance",
    "finance_approved": "runs.finalize",
}
REJECTERS = {"runs.approve.manager", "runs.approve.hr", "runs.approve.finance", "runs.finalize"}


def _may_reject_somewhere(principal: Principal) -> bool:
    return any(allowed(principal.role, permission) for permission in REJECTERS)


def _current_round(run: PlanRun) -> list[dict[str, Any]]:
    """History entries since the last reject (the current approval round)."""
    history = (run.approvals_state or {}).get("history", [])
    for index in range(len(history) - 1, -1, -1):
        if history[index]["action"] == "reject":
            return history[index + 1:]
    return history


def _check_four_eyes(session: Session, run: PlanRun, principal: Principal,
                     action: str) -> None:
    if run.created_by == principal.user_id:
        raise Forbidden(f"four-eyes: you started run {run.id}, so you cannot {action} it")
    if not tenants.separation_of_duties(session, principal.tenant_id):
        return
    me = str(principal.user_id)
    if action == "finalize":
        approved = [e["action"] for e in (run.approvals_state or {}).get("history", [])
                    if e["actor_user_id"] == me and e["action"] in APPROVALS]
        if approved:
            raise Forbidden(f"separation of duties: you did {approved[-1]} on run {run.id}, "
                            "so you cannot finalize it")
        return
    for entry in _current_round(run):
        if entry["actor_user_id"] == str(principal.user_id) and entry["action"] != action:
            raise Forbidden(f"four-eyes: you already did {entry['action']} on run {run.id}; "
                            "nobody approves two stages of one run")


def _check_payouts(session: Session, run: PlanRun) -> None:
    totals = runs.totals_of(session, run.id) or {}
    nulls = int(totals.get("null_payouts", 0))
    if nulls:
        raise Conflict(f"run {run.id} has {nulls} employee(s) with a null payout; "
                       "it cannot be approved until they are fixed",
                       errors=[{"loc": ["run", "null_payouts"], "msg": str(nulls),
                                "count": nulls}])


def _append(run: PlanRun, principal: Principal, action: str, target: str,
            comment: str | None) -> dict[str, Any]:
    state = dict(run.approvals_state or {"state": run.status, "history": []})
    entry = {"action": action, "from_state": run.status, "to_state": target,
             "actor_user_id": str(principal.user_id), "actor_role": str(principal.role),
             "at": datetime.now(UTC).isoformat(), "comment": comment}
    history = [*state.get("history", []), entry]
    state.update(state=target, history=history)
    state.setdefault("snapshot_hash_frozen", run.snapshot_hash if action != "reject" else None)
    run.approvals_state = state
    run.status = target
    return entry


def _refuse(principal: Principal, run_id: uuid.UUID, action: str, error: ProblemError) -> None:
    record_refusal(principal.tenant_id, principal.user_id, f"run.{action}", "plan_run", run_id,
                   error.detail or error.title)
    raise error


def _validate(session: Session, run: PlanRun, principal: Principal, action: str,
              comment: str | None) -> str:
    """The target state of `action`, or the first failing check's error."""
    if action == "reject":
        if not _may_reject_somewhere(principal):
            raise Forbidden(f"role '{principal.role}' cannot reject runs")
        if run.status not in REJECT_GATES:
            raise Conflict(f"run {run.id} is {run.status}: it cannot be rejected")
        if not allowed(principal.role, REJECT_GATES[run.status]):
            raise Forbidden(f"role '{principal.role}' cannot reject a {run.status} run")
        if not comment or not comment.strip():
            raise UnprocessableEntity([{"loc": ["body", "comment"],
                                        "msg": "a reject needs a comment giving the reason"}])
        return "draft"
    transition = FINALIZE if action == "finalize" else APPROVALS[action]
    if not allowed(principal.role, transition.permission):
        raise Forbidden(f"role '{principal.role}' lacks permission '{transition.permission}'")
    if run.status != transition.source:
        raise Conflict(f"run {run.id} is {run.status}: {action} needs {transition.source}")
    _check_four_eyes(session, run, principal, action)
    _check_payouts(session, run)
    return transition.target


def transition(session: Session, principal: Principal, run_id: uuid.UUID, action: str,
               comment: str | None, override_reason: str | None = None) -> RunOut:
    """Apply `action` (an approval, reject or finalize) to the run, or refuse it. A finalize
    also needs no unresolved inquiry (or an override reason) and writes the deferred awards
    to the ledger in this same transaction (both or neither)."""
    run = runs.run_for_update(session, run_id)
    before = run.status
    overridden: list[uuid.UUID] = []
    try:
        target = _validate(session, run, principal, action, comment)
        if action == "finalize":
            overridden = inquiries.check_finalize(session, run_id, override_reason)
            deferrals.check_finalize(session, run_id)
    except (Forbidden, Conflict) as error:
        _refuse(principal, run_id, action, error)
    entry = _append(run, principal, action, target, comment)
    session.flush()
    if action == "finalize":
        inquiries.record_override(session, principal, run_id, overridden, override_reason)
        adjustments.on_finalize(session, principal, run_id)
    record_event(session, principal_or_actor_id=principal, action=f"run.{action}",
                 entity="plan_run", entity_id=run_id,
                 before={"status": before}, after={"status": target, "comment": comment,
                                                   "snapshot_hash": run.snapshot_hash,
                                                   "at": entry["at"]})
    return runs.run_out(session, run, principal=principal)
