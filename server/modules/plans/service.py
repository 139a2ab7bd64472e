"""Bonus plans, the area's one door: what the router and other areas call.

The work is done in one module per question; this module only names the public functions:
- `store`: reading plans and steps, the stored document and the draft guards;
- `documents`: drafts, header edits, the whole document (add-in), declared catalog inputs;
- `steps`: the steps API of a draft (add, update, delete, reorder);
- `lifecycle`: lock, new versions, diff;
- `evaluation`: test vectors, and the compiled form of a locked plan for runs (cached).
Read-only questions a lower area asks (the catalog: which plans use an input) are
`queries`, which imports no other area.
"""

from __future__ import annotations

from server.modules.plans.documents import (
    catalog_keys,
    create_plan,
    create_plan_from_document,
    plan_inputs,
    replace_document,
    replace_inputs,
    update_plan,
)
from server.modules.plans.evaluation import evaluate, get_locked_plan
from server.modules.plans.lifecycle import diff_plans, lock_plan, new_version
from server.modules.plans.queries import plans_using_input
from server.modules.plans.steps import add_step, delete_step, get_step, reorder_steps, update_step
from server.modules.plans.store import (
    ENTITY,
    default_text,
    diagnostics_for,
    document_of,
    get_plan,
    list_plans,
    list_steps,
    payout_of,
    snapshot,
)

__all__ = [
    "ENTITY",
    "add_step",
    "catalog_keys",
    "create_plan",
    "create_plan_from_document",
    "default_text",
    "delete_step",
    "diagnostics_for",
    "diff_plans",
    "document_of",
    "evaluate",
    "get_locked_plan",
    "get_plan",
    "get_step",
    "list_plans",
    "list_steps",
    "lock_plan",
    "new_version",
    "payout_of",
    "plan_inputs",
    "plans_using_input",
    "reorder_steps",
    "replace_document",
    "replace_inputs",
    "snapshot",
    "update_plan",
    "update_step",
]
