"""Request and response bodies of the runs API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class RunStart(BaseModel):
    """PRD §15.5. `tenant_id` may be given but must be the caller's own tenant."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: uuid.UUID | None = None
    plan_id: uuid.UUID
    upload_id: uuid.UUID = Field(description="a ready employees upload")
    funds_upload_id: uuid.UUID | None = Field(None, description="a ready funds upload")
    scenario_name: str | None = Field(None, max_length=200)
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="parameter overrides (what-if), e.g. {\"hurdle_rate\": \"0.04\"}; "
                    "part of the snapshot")


class RunAccepted(BaseModel):
    run_id: uuid.UUID
    status: str
    snapshot_hash: str


class ApprovalEntry(BaseModel):
    action: str
    from_state: str
    to_state: str
    actor_user_id: uuid.UUID
    actor_name: str | None = Field(
        None, description="the actor's display name (their email when they have none); "
                          "null when the user no longer exists")
    actor_role: str
    at: datetime
    comment: str | None = None


class Approvals(BaseModel):
    state: str
    history: list[ApprovalEntry]


class RunOut(BaseModel):
    id: uuid.UUID
    plan_id: uuid.UUID
    upload_id: uuid.UUID | None
    funds_upload_id: uuid.UUID | None
    scenario_name: str | None
    status: str
    parameters: dict[str, Any]
    snapshot_hash: str
    results_hash: str | None
    error: str | None
    progress: dict[str, Any]
    attempts: int
    created_by: uuid.UUID | None
    started_at: datetime
    finished_at: datetime | None
    approvals: Approvals
    totals: dict[str, Any] | None = None


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None


class ResultRow(BaseModel):
    employee_ref: str
    values: dict[str, Any]
    diagnostics: list[dict[str, Any]]


class ResultsPage(BaseModel):
    run_id: uuid.UUID
    items: list[ResultRow]
    next_cursor: str | None


class TapeStep(BaseModel):
    step: str
    order: int
    expr: str
    condition: str | None
    condition_value: bool | None
    bindings: dict[str, Any]
    result: Any
    diagnostics: list[dict[str, Any]]


class TapeOut(BaseModel):
    run_id: uuid.UUID
    employee_ref: str
    plan_name: str
    plan_hash: str
    payout_step: str
    payout: Any
    steps: list[TapeStep]
    stored_values: dict[str, Any]
    matches_stored: bool = Field(description="the tape's results equal the stored row's")


class EmployeeDifference(BaseModel):
    employee_ref: str
    steps: dict[str, dict[str, Any]] = Field(description="step → {stored, reproduced}")


class ReproduceOut(BaseModel):
    run_id: uuid.UUID
    snapshot_hash: str
    stored_results_hash: str | None
    reproduced_results_hash: str
    identical: bool
    differences: list[EmployeeDifference]
    differing_employees: int


class EmployeeDelta(BaseModel):
    employee_ref: str
    base: str | None
    other: str | None
    delta: str | None
    status: Literal["both", "only_base", "only_other"]


class CompareOut(BaseModel):
    run_id: uuid.UUID
    other_run_id: uuid.UUID
    payout_step: str
    base_total: str
    other_total: str
    total_delta: str
    changed: int
    employees: list[EmployeeDelta]
    next_cursor: str | None


class ParityRow(BaseModel):
    employee_ref: str
    paysheet: str | None
    legacy: str | None
    difference: str | None
    within_tolerance: bool


class ParityOut(BaseModel):
    run_id: uuid.UUID
    amount_column: str
    step: str
    tolerance: str
    compared: int
    passed: bool
    failures: int
    max_abs_difference: str
    only_in_run: list[str]
    only_in_legacy: list[str]
    failing_rows: list[ParityRow] = Field(description="the first 100 rows outside tolerance")
