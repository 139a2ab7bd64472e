"""Request bodies of the deferrals API (responses are documented dicts, amounts as R10 text)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine import r10


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NavIn(_Body):
    fund_ref: str = Field(min_length=1, max_length=200)
    nav_date: date
    nav: Decimal = Field(gt=0, description="net asset value per unit, up to 10 decimals")
    currency: str = Field(pattern=r"^[A-Z]{3}$")

    @field_validator("nav")
    @classmethod
    def _ten_places(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or r10.r10(value) != value:
            raise ValueError("nav must be a finite number with at most 10 decimal places")
        return value


class NavsIn(_Body):
    navs: list[NavIn] = Field(min_length=1, max_length=10_000)


class VestingRunIn(_Body):
    vest_date: date = Field(description="tranches due on or before this date vest, at its NAV")


class Decision(_Body):
    action: Literal["hr_approve", "finance_approve", "finalize", "reject"]
    comment: str | None = Field(None, max_length=2000)


class ProposalIn(_Body):
    award_id: uuid.UUID
    tranche: int | None = Field(None, ge=1, description="one tranche, or every one when null")
    fraction: Decimal = Field(gt=0, le=1, description="share reduced or recovered, 0 < f <= 1")
    reason: str = Field(min_length=1, max_length=2000)
    evidence: str = Field(min_length=1, max_length=5000,
                          description="where the evidence is (file, case number, minutes)")
    effective_date: date


class ActionDecision(_Body):
    approve: bool
    comment: str | None = Field(None, max_length=2000)


class LeaverIn(_Body):
    employee_ref: str = Field(min_length=1, max_length=200)
    exit_date: date
    leaver_kind: Literal["good", "bad"]
    reason: str = Field(min_length=1, max_length=2000)
    evidence: str | None = Field(None, max_length=5000)
