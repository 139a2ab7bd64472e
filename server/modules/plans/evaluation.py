"""Evaluating plans: test vectors on any valid plan (nothing stored), and the compiled form
of a locked plan for runs, cached by plan hash.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from engine.check import did_you_mean
from engine.plan import CompiledPlan, coerce_value
from server.errors import Conflict, UnprocessableEntity
from server.modules.plans import vectors
from server.modules.plans.models import BonusPlan
from server.modules.plans.store import as_error, diagnostics_for, get_plan

# --- evaluation -------------------------------------------------------------------------


def _overrides(compiled: CompiledPlan, raw: Mapping[str, Any]) -> dict[str, Any]:
    dtypes = {spec.key: spec.dtype for spec in compiled.document.parameters}
    errors = []
    for key, value in raw.items():
        loc = ["body", "parameters", key]
        if key not in dtypes:
            errors.append(
                {
                    "loc": loc,
                    "type": "unknown_parameter",
                    "msg": f"'{key}' is not a parameter of this plan{did_you_mean(key, dtypes)}",
                }
            )
            continue
        try:
            coerce_value(dtypes[key], value)
        except ValueError as error:
            errors.append({"loc": loc, "msg": str(error), "type": "value_error"})
    if errors:
        raise UnprocessableEntity(errors)
    return dict(raw)


def evaluate(
    session: Session, plan_id: uuid.UUID, rows: list[dict[str, Any]], parameters: Mapping[str, Any]
) -> dict[str, Any]:
    """Test vectors on any valid plan (draft or locked), nothing stored."""
    plan = get_plan(session, plan_id)
    compiled, found = diagnostics_for(plan)
    if compiled is None:
        raise UnprocessableEntity(
            [as_error(d) for d in found], f"the plan is not valid yet ({len(found)} problem(s))"
        )
    results = vectors.evaluate_rows(compiled, rows, _overrides(compiled, parameters))
    return {"plan_hash": compiled.plan_hash, "payout_step": compiled.payout, "rows": results}


_COMPILED: OrderedDict[tuple[str, int], CompiledPlan] = OrderedDict()
_COMPILED_MAX = 64
_COMPILED_LOCK = threading.Lock()


def get_locked_plan(session: Session, plan_id: uuid.UUID) -> tuple[BonusPlan, CompiledPlan]:
    """A locked (or archived) plan and its compiled form, cached by plan hash (for runs).

    The cache key is (plan hash, version): the hash leaves the version number out, but the
    compiled document carries it (snapshot hashes include it). 409 when the plan is still a
    draft. The compiled plan's hash must equal the stored one: a mismatch means the stored
    document changed under a lock, which must never happen.
    """
    plan = get_plan(session, plan_id)
    if plan.status not in ("locked", "archived") or plan.plan_hash is None:
        raise Conflict(f"plan '{plan.name}' v{plan.version} is not locked; lock it first")
    key = (plan.plan_hash, plan.version)
    with _COMPILED_LOCK:
        compiled = _COMPILED.get(key)
        if compiled is not None:
            _COMPILED.move_to_end(key)
            return plan, compiled
    compiled, _ = diagnostics_for(plan)
    if compiled is None or compiled.plan_hash != plan.plan_hash:
        raise RuntimeError(f"locked plan {plan.id} no longer matches its plan hash")
    with _COMPILED_LOCK:
        _COMPILED[key] = compiled
        while len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
    return plan, compiled
