"""Read-only questions other areas ask about plans, answered from the plans' own tables.

This module imports nothing from another area, so an area that `plans` itself depends on
(the catalog refuses to change an input a plan declares) can ask without an import cycle.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.modules.plans.models import BonusPlan, PlanInput


def plans_using_input(session: Session, input_id: uuid.UUID) -> list[str]:
    """'name vN' of every plan declaring catalog input `input_id` (for the catalog's 409)."""
    rows = session.execute(
        select(BonusPlan.name, BonusPlan.version)
        .join(PlanInput, PlanInput.plan_id == BonusPlan.id)
        .where(PlanInput.input_id == input_id)
        .order_by(BonusPlan.name, BonusPlan.version)
    )
    return [f"'{name}' v{version}" for name, version in rows]
