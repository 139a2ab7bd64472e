"""Request and response bodies of the plan routes.

`PlanDocumentIn` is the ENGINE.md §1 plan document as the add-in sends it, deliberately
lenient: a draft may lack a currency, a payout or steps, and its expressions may not parse.
Such problems come back as diagnostics (and block the lock) instead of losing the author's
work; only what cannot be stored at all (wrong JSON types, bad dtypes) is a 422.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

DType = Literal["decimal", "int", "text", "date", "bool"]
Scope = Literal["employee", "fund"]
Status = Literal["draft", "approved", "locked", "archived"]
DisplayFormat = Literal["money", "percent", "points", "integer", "number"]  # engine.plan
CURRENCY = r"^[A-Z]{3}$"
MAX_EXPR = 20_000
# Test vectors are evaluated inline, in the request: one evaluation, every tape cut from it
# (engine.backends.reference.explain_many), so cost is linear; the cap bounds the request.
MAX_VECTOR_ROWS = 1000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Presented(_Body):
    """Statement presentation (`label`, `format`; engine.plan.PRESENTATION_FIELDS) is kept
    out of the stored document while unset, so documents read as they did before."""

    _optional: ClassVar[tuple[str, ...]] = ("label", "format")

    @model_serializer(mode="wrap")
    def _without_unset_presentation(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        for name in self._optional:
            if data.get(name) is None:
                data.pop(name, None)
        return data


class DocInput(_Presented):
    _optional: ClassVar[tuple[str, ...]] = ("format",)

    key: str = Field(min_length=1, max_length=63)
    label: str | None = Field(default=None, max_length=200)
    dtype: DType
    scope: Scope = "employee"
    required: bool = True
    default: Any = None
    format: DisplayFormat | None = None


class DocParameter(_Presented):
    key: str = Field(min_length=1, max_length=63)
    dtype: DType
    value: Any = None
    label: str | None = Field(default=None, max_length=200)
    format: DisplayFormat | None = None


class DocStep(_Presented):
    order: int = Field(ge=-1_000_000, le=1_000_000)
    name: str = Field(min_length=1, max_length=200)
    expr: str = Field(max_length=MAX_EXPR)
    condition: str | None = Field(default=None, max_length=MAX_EXPR)
    default: Any = None
    notes: str | None = Field(default="", max_length=5000)
    label: str | None = Field(default=None, max_length=200)
    format: DisplayFormat | None = None


class PlanDocumentIn(_Body):
    """ENGINE.md §1. `version` is informative: the stored document carries the plan's own."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    version: int | None = None
    effective_from: date | None = None
    effective_to: date | None = None
    currency: str | None = Field(default=None, pattern=CURRENCY)
    inputs: list[DocInput] = Field(default_factory=list, max_length=500)
    parameters: list[DocParameter] = Field(default_factory=list, max_length=500)
    steps: list[DocStep] = Field(default_factory=list, max_length=1000)
    payout: str | None = Field(default=None, max_length=200)
    deferral: dict[str, Any] | None = Field(
        default=None, description="deferral policy (docs/deferrals.md); checked at lock")


class PlanCreate(_Body):
    """PRD §15.1, plus optional currency, payout and a full plan `document`.

    Fields given here win over the same fields of `document`."""

    name: str = Field(min_length=1, max_length=200, examples=["2025 Analyst Bonus Plan"])
    version: int = Field(default=1, ge=1, le=1_000_000)
    effective_from: date | None = None
    effective_to: date | None = None
    notes: str | None = Field(default=None, max_length=5000)
    currency: str | None = Field(default=None, pattern=CURRENCY)
    payout: str | None = Field(default=None, max_length=200)
    document: PlanDocumentIn | None = None


class PlanUpdate(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    effective_from: date | None = None
    effective_to: date | None = None
    notes: str | None = Field(default=None, max_length=5000)
    currency: str | None = Field(default=None, pattern=CURRENCY)
    payout: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _something_to_change(self) -> PlanUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self


class PlanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    version: int
    status: Status
    currency: str | None
    effective_from: date | None
    effective_to: date | None
    notes: str | None
    payout: str | None
    plan_hash: str | None
    previous_version_id: uuid.UUID | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    locked_by: uuid.UUID | None
    locked_at: datetime | None


class PlanPage(BaseModel):
    items: list[PlanOut]
    next_cursor: str | None


class StepCreate(_Body):
    """PRD §15.2. `outputs`, when given, must be `[name]`: a step defines one variable."""

    step_order: int = Field(ge=-1_000_000, le=1_000_000)
    name: str = Field(min_length=1, max_length=63)
    expr: str = Field(min_length=1, max_length=MAX_EXPR)
    condition_expr: str | None = Field(default=None, max_length=MAX_EXPR)
    outputs: list[str] | None = Field(default=None, max_length=10)
    default: Any = None
    notes: str | None = Field(default=None, max_length=5000)


class StepUpdate(_Body):
    step_order: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    name: str | None = Field(default=None, min_length=1, max_length=63)
    expr: str | None = Field(default=None, min_length=1, max_length=MAX_EXPR)
    condition_expr: str | None = Field(default=None, max_length=MAX_EXPR)
    outputs: list[str] | None = Field(default=None, max_length=10)
    default: Any = None
    notes: str | None = Field(default=None, max_length=5000)

    @model_validator(mode="after")
    def _something_to_change(self) -> StepUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self


class StepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    plan_id: uuid.UUID
    step_order: int
    name: str
    expr: str
    condition_expr: str | None
    outputs: list[str]
    default: str | None = Field(validation_alias="default_value")
    notes: str | None


class StepList(BaseModel):
    items: list[StepOut]


class StepReorder(_Body):
    """Every step id of the plan exactly once, in the new display order (10, 20, ...)."""

    step_ids: list[uuid.UUID] = Field(min_length=1, max_length=1000)


class PlanInputIn(_Body):
    """A catalog input the plan declares; scope/required/default override the catalog's."""

    key: str = Field(min_length=1, max_length=63)
    scope: Scope | None = None
    required: bool = True
    default: Any = None


class PlanInputsPut(_Body):
    inputs: list[PlanInputIn] = Field(max_length=500)


class PlanInputOut(BaseModel):
    input_id: uuid.UUID
    key: str
    label: str | None
    dtype: DType
    scope: Scope
    required: bool
    default: Any


class PlanInputList(BaseModel):
    items: list[PlanInputOut]


class Diagnostic(BaseModel):
    """One problem of the plan, located for the add-in: step row, field (column), position."""

    step: str | None
    field: str | None
    line: int | None
    column: int | None
    code: str
    message: str


class ValidationResult(BaseModel):
    valid: bool
    diagnostics: list[Diagnostic]
    plan_hash: str | None = Field(description="The hash the plan would lock with, when valid")


class DocumentSaved(ValidationResult):
    plan: PlanOut


class EvaluateRequest(_Body):
    """Test vectors: input values per row (`employee_ref` optional), parameter overrides."""

    rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_VECTOR_ROWS)
    parameters: dict[str, Any] = Field(default_factory=dict)


class EvaluatedRow(BaseModel):
    employee_ref: str
    values: dict[str, Any]
    payout: Any
    diagnostics: list[dict[str, str]]
    tape: dict[str, Any]


class EvaluateResponse(BaseModel):
    plan_hash: str
    payout_step: str
    rows: list[EvaluatedRow]


class FieldChange(BaseModel):
    before: Any
    after: Any


class ChangedItem(BaseModel):
    name: str
    fields: dict[str, FieldChange]


class SectionDiff(BaseModel):
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    changed: list[ChangedItem]


class PlanDiff(BaseModel):
    """Changes from `against` (before) to `plan_id` (after); steps matched by name."""

    plan_id: uuid.UUID
    against: uuid.UUID
    header: dict[str, FieldChange]
    steps: SectionDiff
    inputs: SectionDiff
    parameters: SectionDiff
    payout: FieldChange | None
    identical: bool
