"""The deferral policy model and its exact arithmetic (engine/deferral.py), by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from engine.check import check_plan
from engine.deferral import (
    DeferralPolicy,
    add_months,
    award_parts,
    split_amount,
    units_for,
    vest_dates,
)
from engine.hashing import plan_hash
from engine.plan import validate_document

D = Decimal


def policy(**changes) -> DeferralPolicy:
    base = {"variable_pay_step": "bonus", "deferred_step": "deferred",
            "instruments": [{"fund_ref": "F1", "share": "0.5"}],
            "schedule": {"kind": "pro_rata", "years": 3, "first_vesting_months": 12},
            "retention_months": 12, "unit_decimals": 2}
    return DeferralPolicy.model_validate(base | changes)


def document(deferral=None) -> dict:
    doc = {"name": "p", "effective_from": "2025-01-01", "effective_to": "2025-12-31",
           "currency": "USD",
           "inputs": [{"key": "pay", "dtype": "decimal"}, {"key": "flag", "dtype": "bool"}],
           "steps": [{"order": 1, "name": "bonus", "expr": "pay"},
                     {"order": 2, "name": "deferred", "expr": "round2(bonus * 0.4)"},
                     {"order": 3, "name": "eligible", "expr": "flag"}],
           "payout": "bonus"}
    if deferral is not None:
        doc["deferral"] = deferral
    return doc


def test_a_third_of_100000_splits_into_whole_cents_that_add_up():
    # 100000 / 3 = 33333.333...: two tranches of 33333.33 and the last takes 33333.34
    assert split_amount(D("100000"), 3) == [D("33333.33"), D("33333.33"), D("33333.34")]
    assert sum(split_amount(D("100000"), 3)) == D("100000")


def test_units_round_down_and_the_fraction_stays_cash():
    # tranche 33333.33, half in units = 16666.665 -> 16666.66 (half-even on the cent ...665 ->
    # ...66); at NAV 123.45: 16666.66 / 123.45 = 135.0074...; 2 decimals down = 135.00 units,
    # worth 135.00 x 123.45 = 16665.75; cash = 33333.33 - 16665.75 = 16667.58
    parts = award_parts(policy(), date(2026, 1, 31), D("100000"), {"F1": D("123.45")})
    first = [p for p in parts if p.tranche == 1]
    units, cash = first
    assert (units.units, units.amount, cash.amount) == (D("135.00"), D("16665.75"),
                                                        D("16667.58"))
    assert units_for(D("10"), D("3"), 0) == D("3")
    # the three tranches add up to the deferred amount exactly
    assert sum(p.amount for p in parts) == D("100000")


def test_vest_dates_clip_to_the_month_end_and_retention_follows():
    assert vest_dates(policy(), date(2024, 2, 29)) == [date(2025, 2, 28), date(2026, 2, 28),
                                                       date(2027, 2, 28)]
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    cliff = policy(schedule={"kind": "cliff", "years": 4, "first_vesting_months": 48})
    parts = award_parts(cliff, date(2026, 3, 1), D("1000"), {"F1": D("10")})
    assert {p.vest_date for p in parts} == {date(2030, 3, 1)}
    assert [p.retention_until for p in parts] == [date(2031, 3, 1), date(2030, 3, 1)]


def test_policy_shape_errors_name_the_field():
    with pytest.raises(ValidationError, match="add up to more than 1"):
        policy(instruments=[{"fund_ref": "F1", "share": "0.7"}, {"fund_ref": "F2",
                                                                 "share": "0.4"}])
    with pytest.raises(ValidationError, match="once"):
        policy(instruments=[{"fund_ref": "F1", "share": "0.2"}, {"fund_ref": "F1",
                                                                 "share": "0.2"}])
    with pytest.raises(ValidationError):
        policy(schedule={"kind": "pro_rata", "years": 0})


def test_lock_checks_steps_types_and_the_12_month_rule():
    bad = {"variable_pay_step": "bonsu", "deferred_step": "eligible",
           "schedule": {"years": 3, "first_vesting_months": 6}}
    _, problems = check_plan(validate_document(document(bad)))
    messages = {p.field: p.message for p in problems}
    assert "'bonsu' is not a step" in messages["deferral.variable_pay_step"]
    assert "must be a decimal" in messages["deferral.deferred_step"]
    assert "12 months" in messages["deferral.schedule.first_vesting_months"]
    good = {"variable_pay_step": "bonus", "deferred_step": "deferred",
            "schedule": {"years": 3}}
    compiled, problems = check_plan(validate_document(document(good)))
    assert problems == [] and compiled is not None


def test_the_plan_hash_covers_the_policy_and_plans_without_one_keep_theirs():
    plain = validate_document(document())
    with_none = validate_document(document() | {"deferral": None})
    three = validate_document(document({"variable_pay_step": "bonus",
                                        "deferred_step": "deferred", "schedule": {"years": 3}}))
    four = validate_document(document({"variable_pay_step": "bonus",
                                       "deferred_step": "deferred", "schedule": {"years": 4}}))
    assert plan_hash(plain) == plan_hash(with_none)
    assert len({plan_hash(plain), plan_hash(three), plan_hash(four)}) == 3
