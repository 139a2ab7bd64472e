"""What every evaluation backend returns, so results can be compared cell for cell.

Backends take a `CompiledPlan` (engine.plan) and a Polars frame of typed inputs and return an
`EvalResult`. The frame layout is the contract between the reference and the Polars backend:
two backends agree exactly when their result frames are equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from engine.dsl.ast import Type

# Diagnostic codes (ENGINE.md §5, §6). Messages are for people; codes are for machines.
DIVISION_BY_ZERO = "division_by_zero"
NEGATIVE_WEIGHT = "negative_weight"
NULL_PAYOUT = "null_payout"
POOL_NOT_CONSTANT = "pool_not_constant"
INVALID_PERIOD = "invalid_period"

DIAGNOSTIC_DTYPE = pl.List(pl.Struct({"step": pl.String, "code": pl.String, "message": pl.String}))
"""Per row: the diagnostics in evaluation order (step order of the topological sort)."""

POLARS_TYPES: dict[Type, pl.DataType] = {
    Type.DECIMAL: pl.Decimal(38, 10),
    Type.BOOL: pl.Boolean(),
    Type.TEXT: pl.String(),
    Type.DATE: pl.Date(),
}
"""The Polars column type of each DSL type: inputs, step results and stored results."""


class EvaluationError(Exception):
    """A failure that stops the whole evaluation (not a per-row diagnostic)."""


class ValueOverflow(EvaluationError):
    """|x| >= 1e28 in some step (R10 rule 1): fails the run naming step and employee."""

    def __init__(self, step: str, employee_ref: str) -> None:
        super().__init__(
            f"step '{step}': value out of range (|x| >= 1e28) for employee '{employee_ref}'"
        )
        self.step = step
        self.employee_ref = employee_ref


@dataclass(frozen=True)
class EvalResult:
    """Columns: `employee_ref` (String), one column per step in DISPLAY order, typed
    Decimal(38,10) / Boolean / String / Date by the step's type, then `diagnostics`
    (DIAGNOSTIC_DTYPE, an empty list when none). Rows keep the input frame's order."""

    frame: pl.DataFrame


def null_payout_message(payout: str, first_null_step: str, cause: str | None) -> str:
    """The one wording of the `null_payout` diagnostic, shared by every backend."""
    suffix = f" ({cause})" if cause else ""
    return f"payout '{payout}' is null; first null step '{first_null_step}'{suffix}"


DIAGNOSTIC_MESSAGES = {
    DIVISION_BY_ZERO: "division by zero",
    NEGATIVE_WEIGHT: "negative weight in allocate",
    POOL_NOT_CONSTANT: "allocate pool differs within a group",
    INVALID_PERIOD: "period ends before it starts",
}
