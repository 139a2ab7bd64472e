"""ORM models of the deferral area (tables from migration 0110).

`LedgerEntry` rows are only ever inserted: the database refuses UPDATE/DELETE on them (and on
`FundNav` and `DeferralAward`) even for the application role.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Numeric, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, TenantScoped, uuid_pk

MONEY = Numeric(38, 10, asdecimal=True)


class FundNav(TenantScoped, Base):
    __tablename__ = "fund_navs"

    id: Mapped[uuid.UUID] = uuid_pk()
    fund_ref: Mapped[str]
    nav_date: Mapped[date]
    nav: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str]
    source: Mapped[str] = mapped_column(default="api")
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class DeferralAward(TenantScoped, Base):
    __tablename__ = "deferral_awards"

    id: Mapped[uuid.UUID] = uuid_pk()
    run_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    plan_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    employee_ref: Mapped[str]
    award_date: Mapped[date]
    currency: Mapped[str]
    variable_pay: Mapped[Decimal] = mapped_column(MONEY)
    deferred: Mapped[Decimal] = mapped_column(MONEY)
    policy: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class LedgerEntry(TenantScoped, Base):
    __tablename__ = "deferral_ledger"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), default=uuid.uuid4)
    batch_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    award_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    employee_ref: Mapped[str]
    tranche: Mapped[int]
    kind: Mapped[str]
    instrument: Mapped[str]
    fund_ref: Mapped[str | None]
    amount: Mapped[Decimal] = mapped_column(MONEY)
    units: Mapped[Decimal | None] = mapped_column(MONEY)
    nav: Mapped[Decimal | None] = mapped_column(MONEY)
    nav_date: Mapped[date | None]
    currency: Mapped[str]
    vest_date: Mapped[date]
    retention_until: Mapped[date]
    effective_date: Mapped[date]
    source: Mapped[str]
    source_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    note: Mapped[str | None]
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class VestingRun(TenantScoped, Base):
    __tablename__ = "vesting_runs"

    id: Mapped[uuid.UUID] = uuid_pk()
    vest_date: Mapped[date]
    status: Mapped[str]
    approvals_state: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=lambda: {"history": []})
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finalized_at: Mapped[datetime | None]


class DeferralAction(TenantScoped, Base):
    """A malus or clawback proposal (needs a second person and finance) or a leaver event."""

    __tablename__ = "deferral_actions"

    id: Mapped[uuid.UUID] = uuid_pk()
    kind: Mapped[str]
    award_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    employee_ref: Mapped[str]
    tranche: Mapped[int | None]
    fraction: Mapped[Decimal | None] = mapped_column(MONEY)
    leaver_kind: Mapped[str | None]
    effective_date: Mapped[date]
    reason: Mapped[str]
    evidence: Mapped[str | None]
    status: Mapped[str]
    approvals: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    proposed_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
