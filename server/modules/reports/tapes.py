"""Calculation tapes for many employees from ONE evaluation (the engine's `explain_many`),
as the JSON-able dicts statements and bulk jobs render."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from engine.backends import reference
from engine.plan import CompiledPlan


def explain_all(
    plan: CompiledPlan,
    frame: pl.DataFrame,
    employee_refs: Iterable[str] | None = None,
    parameters: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """employee_ref -> tape dict (ENGINE.md §8) for `employee_refs` (default: everyone).
    Raises KeyError naming the first employee that is not in the frame."""
    tapes = reference.explain_many(plan, frame, employee_refs, parameters)
    return {ref: tape.to_dict() for ref, tape in tapes.items()}
