"""Deferral policy (part of the plan document) and the exact arithmetic of deferred awards.

A plan may carry a `deferral` section saying which step is the variable pay and which the
deferred part, how the deferred part is split into instruments (cash and units of funds),
how it vests (pro rata over N years with the first vesting no earlier than 12 months after
the award, or one cliff), how long vested units are retained, how units are rounded and what
happens to a leaver. It is plan data: validated at lock, covered by the plan hash.

Everything here is pure Decimal arithmetic under rule R10 (money is never a float), so the
server, the tests and a reader with a calculator get the same figures.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine import r10

CENT = Decimal("0.01")
MIN_FIRST_VESTING_MONTHS = 12
LeaverTreatment = Literal["keep_schedule", "forfeit_unvested"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Instrument(_Strict):
    """A share of each deferred tranche paid in units of one fund (valued at NAV)."""

    fund_ref: str = Field(min_length=1, max_length=200)
    share: Decimal = Field(gt=0, le=1)

    @field_validator("share", mode="before")
    @classmethod
    def _exact(cls, value: object) -> object:
        if isinstance(value, float):
            return repr(value)
        return value


class Schedule(_Strict):
    """`pro_rata`: `years` equal tranches, the first `first_vesting_months` after the award
    and one a year after that; `cliff`: everything at `first_vesting_months`."""

    kind: Literal["pro_rata", "cliff"] = "pro_rata"
    years: int = Field(ge=1, le=10)
    first_vesting_months: int = Field(default=12, ge=1, le=120)


class LeaverPolicy(_Strict):
    good: LeaverTreatment = "keep_schedule"
    bad: LeaverTreatment = "forfeit_unvested"


class DeferralPolicy(_Strict):
    """The `deferral` section of a plan document (docs/deferrals.md)."""

    variable_pay_step: str = Field(min_length=1)
    deferred_step: str = Field(min_length=1)
    award_date: date | None = None
    instruments: list[Instrument] = Field(default_factory=list, max_length=20)
    schedule: Schedule
    retention_months: int = Field(default=0, ge=0, le=120)
    unit_decimals: int = Field(default=4, ge=0, le=10)
    leaver: LeaverPolicy = Field(default_factory=LeaverPolicy)

    @model_validator(mode="after")
    def _shares(self) -> DeferralPolicy:
        funds = [i.fund_ref for i in self.instruments]
        if len(set(funds)) != len(funds):
            raise ValueError("each fund may appear once in deferral.instruments")
        if sum((i.share for i in self.instruments), Decimal(0)) > 1:
            raise ValueError("deferral.instruments shares add up to more than 1")
        return self

    def effective_award_date(self, effective_to: date | None) -> date | None:
        """The award date: the policy's own, else the end of the plan period."""
        return self.award_date or effective_to


def policy_problems(policy: DeferralPolicy, step_types: dict[str, str],
                    effective_to: date | None) -> list[tuple[str, str]]:
    """Lock-time checks that need the rest of the plan (the steps and the period), as
    (field, message) pairs; `engine.check` turns them into problems."""
    found = []
    for field in ("variable_pay_step", "deferred_step"):
        name = getattr(policy, field)
        if name not in step_types:
            found.append((f"deferral.{field}", f"deferral.{field}: '{name}' is not a step"))
        elif step_types[name] != "decimal":
            found.append((f"deferral.{field}", f"deferral.{field}: step '{name}' is "
                          f"{step_types[name]}, it must be a decimal"))
    if policy.schedule.first_vesting_months < MIN_FIRST_VESTING_MONTHS:
        found.append(("deferral.schedule.first_vesting_months",
                      "deferral.schedule.first_vesting_months: the first vesting may not be "
                      f"earlier than {MIN_FIRST_VESTING_MONTHS} months after the award"))
    if policy.effective_award_date(effective_to) is None:
        found.append(("deferral.award_date", "deferral.award_date: set it, or give the plan "
                      "an effective_to date (the default award date)"))
    return found


def add_months(start: date, months: int) -> date:
    """`start` moved by whole months; the day is clipped to the month's length."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def vest_dates(policy: DeferralPolicy, award_date: date) -> list[date]:
    schedule = policy.schedule
    if schedule.kind == "cliff":
        return [add_months(award_date, schedule.first_vesting_months)]
    return [add_months(award_date, schedule.first_vesting_months + 12 * k)
            for k in range(schedule.years)]


def split_amount(amount: Decimal, parts: int) -> list[Decimal]:
    """`amount` in `parts` tranches of whole cents; the last takes what is left over, so the
    tranches add up to the amount exactly."""
    base = (amount / parts).quantize(CENT, rounding=ROUND_DOWN)
    return [base] * (parts - 1) + [r10.r10(amount - base * (parts - 1))]


def units_for(amount: Decimal, nav: Decimal, decimals: int) -> Decimal:
    """Units bought with `amount` at `nav`, rounded DOWN to `decimals` places (the value of
    the fraction not bought stays cash, so nothing is lost)."""
    if nav <= 0:
        raise ValueError(f"NAV must be positive, got {nav}")
    return r10.r10((amount / nav).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN))


def value_of(units: Decimal, nav: Decimal) -> Decimal:
    """Money value of units at a NAV, to the cent (half-even)."""
    return r10.r10((units * nav).quantize(CENT, rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True)
class TranchePart:
    tranche: int
    vest_date: date
    retention_until: date
    instrument: str  # "cash" or "units"
    fund_ref: str | None
    amount: Decimal  # value at the award date
    units: Decimal | None
    nav: Decimal | None


def award_parts(policy: DeferralPolicy, award_date: date, deferred: Decimal,
                navs: dict[str, Decimal]) -> list[TranchePart]:
    """The deferred amount as tranches, each split into unit parts (one per instrument fund,
    `share` of the tranche, in units at `navs[fund]`) and the cash rest."""
    dates = vest_dates(policy, award_date)
    parts: list[TranchePart] = []
    for number, (when, tranche) in enumerate(zip(dates, split_amount(deferred, len(dates)),
                                                 strict=True), start=1):
        retained = add_months(when, policy.retention_months)
        cash = tranche
        for instrument in policy.instruments:
            nav = navs[instrument.fund_ref]
            target = (tranche * instrument.share).quantize(CENT, rounding=ROUND_HALF_EVEN)
            units = units_for(target, nav, policy.unit_decimals)
            value = value_of(units, nav)
            cash -= value
            parts.append(TranchePart(number, when, retained, "units", instrument.fund_ref,
                                     value, units, nav))
        parts.append(TranchePart(number, when, when, "cash", None, r10.r10(cash), None, None))
    return parts
