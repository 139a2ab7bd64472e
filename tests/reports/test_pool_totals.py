"""Pool vs target read from a run's stored totals equals the figures recomputed from its
results, on a plan with several funds, a pool keyed by an input with nulls (the "None"
group), a pool without a key (the "all" group) and a parameter as pool."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import polars as pl
import pytest

from engine import r10
from engine.backends import polars as polars_backend
from engine.backends.base import EvalResult
from engine.data import load_inputs
from engine.plan import CompiledPlan, compile_plan, validate_document
from samples import generate
from server.modules.reports.pool import TOTAL, from_totals, pool_vs_target
from server.modules.runs.totals import compute_totals
from tests.reports.conftest import PLAN


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[CompiledPlan, pl.DataFrame,
                                                            EvalResult, dict]:
    """The plan with two more pools, evaluated over 60 employees in 4 funds, a third of
    them without a desk; returns the plan, inputs, results and the run's totals."""
    document = json.loads(PLAN.read_text())
    document["inputs"].append({"key": "desk", "label": "Desk", "dtype": "text",
                               "scope": "employee", "required": False})
    document["parameters"].append({"key": "firm_pool", "dtype": "decimal",
                                   "value": "2500000.10"})
    document["steps"] += [
        {"order": 91, "name": "desk_share", "expr": "allocate(fund_pool, points, desk)",
         "condition": "eligible"},
        {"order": 92, "name": "firm_share", "expr": "allocate(firm_pool, points)"},
    ]
    plan = compile_plan(validate_document(document, "test plan"))
    out = tmp_path_factory.mktemp("pools")
    people = generate.employees(60, 4, seed=5).with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0).then(None)
        .otherwise(pl.format("D{}", pl.int_range(pl.len()) % 4)).alias("desk"))
    people.write_csv(out / "employees.csv")
    generate.fund_table(4, seed=5).write_csv(out / "funds.csv")
    frame = load_inputs(plan, out / "employees.csv", out / "funds.csv")
    result = polars_backend.evaluate(plan, frame)
    totals = compute_totals(plan, frame, result, polars_backend.parameter_values(plan, {}))
    return plan, frame, result, json.loads(json.dumps(totals))  # as stored: a jsonb round trip


def _stored_order(result: EvalResult) -> EvalResult:
    """Results as the database hands them back: another row order than the inputs'."""
    order = list(range(result.frame.height))
    random.Random(3).shuffle(order)
    return EvalResult(result.frame[order])


def test_stored_totals_give_exactly_the_recomputed_lines(run) -> None:
    plan, frame, result, totals = run
    stored = from_totals(plan, totals)
    assert stored is not None
    assert stored == pool_vs_target(plan, frame, _stored_order(result))
    groups = {(line.pool_step, line.group) for line in stored}
    assert ("desk_share", "None") in groups and ("firm_share", "all") in groups
    assert {line.pool_step for line in stored} == {"pool_share", "desk_share", "firm_share"}
    funds = [line.group for line in stored if line.pool_step == "pool_share"]
    assert funds == ["F001", "F002", "F003", "F004", TOTAL]


def test_lines_match_an_independent_computation(run) -> None:
    """Null keys form the "None" group, sorted by label; allocated is the payout step."""
    plan, frame, result, totals = run
    joined = frame.join(result.frame.select("employee_ref", "target_bonus", "bonus"),
                        on="employee_ref")
    expected: dict[str, list] = {}
    for row in joined.iter_rows(named=True):
        expected.setdefault(str(row["desk"]), []).append(row)
    lines = [line for line in from_totals(plan, totals) if line.pool_step == "desk_share"]
    assert [line.group for line in lines] == [*sorted(expected), TOTAL]
    for line in lines[:-1]:
        members = expected[line.group]
        target = r10.total(m["target_bonus"] for m in members)
        paid = r10.total(m["bonus"] for m in members)
        assert (line.headcount, line.target_sum, line.allocated) == (len(members), target, paid)
        assert line.pool_amount == members[0]["fund_pool"]
        assert line.variance == r10.sub(paid, members[0]["fund_pool"])
        assert line.scale_factor == (None if target == 0 else r10.div(paid, target))
    firm = [line for line in from_totals(plan, totals) if line.pool_step == "firm_share"]
    assert firm[0].pool_amount == Decimal("2500000.10")
    assert firm[0].headcount == firm[1].headcount == frame.height


def test_another_target_step_is_recomputed(run) -> None:
    """Only steps named like "target" are stored per group: another one is recomputed."""
    plan, frame, result, totals = run
    assert from_totals(plan, totals, "points") is None
    lines = pool_vs_target(plan, frame, _stored_order(result), "points")
    expected = result.frame["points"].sum()
    assert [line.target_sum for line in lines if line.pool_step == "firm_share"][-1] == expected
    with pytest.raises(ValueError, match="'no_such_step' is not a step"):
        from_totals(plan, totals, "no_such_step")
    with pytest.raises(ValueError, match="'eligible' is not a decimal step"):
        from_totals(plan, totals, "eligible")


def test_totals_without_pools_are_not_read(run) -> None:
    plan, _, _, totals = run
    assert from_totals(plan, None) is None
    assert from_totals(plan, {**totals, "pools": totals["pools"][:1]}) is None
