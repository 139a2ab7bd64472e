"""ORM models of runs: the run itself, one result row per employee, and the run's totals.

Tables come from migrations 0001 and 0020. Results are written in bulk by `persist.py` (COPY
into a temp table, then INSERT … SELECT) and read through these models.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, TenantScoped, uuid_pk


class PlanRun(TenantScoped, Base):
    __tablename__ = "plan_runs"

    id: Mapped[uuid.UUID] = uuid_pk()
    plan_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    upload_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    funds_upload_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    scenario_name: Mapped[str | None]
    approvals_state: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=lambda: {"state": "draft", "history": []}
    )
    snapshot_hash: Mapped[str]
    # The whole plan document: loaded on first access only (run lists and the run page,
    # read on every poll, never show it).
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, deferred=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    results_hash: Mapped[str | None]
    error: Mapped[str | None]
    progress: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    idempotency_key: Mapped[str | None]
    request_fingerprint: Mapped[str | None]
    attempts: Mapped[int] = mapped_column(default=0)
    worker: Mapped[str | None]
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    execution_started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    status: Mapped[str]


class RunResult(TenantScoped, Base):
    __tablename__ = "run_results"

    run_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    employee_ref: Mapped[str] = mapped_column(primary_key=True)
    values: Mapped[dict[str, Any]] = mapped_column("values", JSONB)
    diagnostics: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class RunTotals(TenantScoped, Base):
    __tablename__ = "run_totals"

    run_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    totals: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
