"""ORM models of bonus plans, their declared inputs and their steps (migration 0001)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, TenantScoped, uuid_pk


class BonusPlan(TenantScoped, Base):
    """One version of a plan. `document` is the full ENGINE.md §1 document of the version;
    `plan_inputs` and `plan_steps` mirror it so steps have stable ids and the database can
    guard them. Once locked, the database refuses every change but locked -> archived."""

    __tablename__ = "bonus_plans"

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str]
    version: Mapped[int]
    status: Mapped[str] = mapped_column(default="draft")
    currency: Mapped[str | None] = mapped_column(String(3))
    effective_from: Mapped[date | None]
    effective_to: Mapped[date | None]
    notes: Mapped[str | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    document: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    plan_hash: Mapped[str | None]
    previous_version_id: Mapped[uuid.UUID | None]
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    locked_by: Mapped[uuid.UUID | None]
    locked_at: Mapped[datetime | None]

    @property
    def payout(self) -> str | None:
        """The payout step named by the document (None until chosen)."""
        return (self.document or {}).get("payout")


class PlanInput(TenantScoped, Base):
    """A catalog input declared by a plan, with the plan's own scope/required/default."""

    __tablename__ = "plan_inputs"

    id: Mapped[uuid.UUID] = uuid_pk()
    plan_id: Mapped[uuid.UUID]
    input_id: Mapped[uuid.UUID]
    scope: Mapped[str] = mapped_column(default="employee")
    required: Mapped[bool] = mapped_column(default=True)
    default_value: Mapped[Any | None] = mapped_column(JSONB)
    position: Mapped[int] = mapped_column(default=0)
    source_mapping: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class PlanStep(TenantScoped, Base):
    """One step: defines the variable `name` (`outputs` is always `[name]`)."""

    __tablename__ = "plan_steps"

    id: Mapped[uuid.UUID] = uuid_pk()
    plan_id: Mapped[uuid.UUID]
    step_order: Mapped[int]
    name: Mapped[str]
    expr: Mapped[str]
    condition_expr: Mapped[str | None]
    outputs: Mapped[list[str]] = mapped_column(JSONB, default=list)
    default_value: Mapped[str | None]
    notes: Mapped[str | None]
    label: Mapped[str | None]  # statement presentation (migration 0070), outside the hash
    display_format: Mapped[str | None]
