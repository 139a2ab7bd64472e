"""The Excel formula backend, recalculated independently by `formulas`, against the reference
backend: ENGINE.md §11 worked examples, nulls and guards, every catalog function, and the
sample plan over generated data (to the cent, ENGINE.md §10)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from engine.backends.excel import ExcelCompileError, build_workbook, compile_plan
from engine.backends.excel_recalc import excel_round
from engine.data import load_inputs
from engine.plan import compile_plan as compile_document
from engine.plan import load_plan
from samples.generate import write
from tests.engine.excel_harness import excel_values, mismatches
from tests.engine.plans import frame, plan

ROOT = Path(__file__).resolve().parents[2]

# One plan holding every worked example of ENGINE.md §11 (and the catalog), one workbook.
EXAMPLES = {
    "two_thirds": "2 / 3 * 3",
    "compound": "1.01 ^ 12",
    "mod_neg_left": "-7 % 3",
    "mod_neg_right": "7 % -3",
    "banker_up": "round2(2.675)",
    "banker_neg": "round2(-0.125)",
    "tiny_even": "0.0000000001 * 0.5",
    "tiny_up": "0.0000000003 * 0.5",
    "seventh": "100000 / 7",
    "percent": "pct(12.5)",
    "no_neg_zero": "-(x * 0)",
    "change_by_zero": "pct_change(cur, prev)",
    "change_guarded": "if(prev == 0) then 0 else pct_change(cur, prev)",
    "max_null": "max(x, missing)",
    "cap_floor_": "cap_floor(x * 30, 100, 200)",
    "clip_": "clip(x * 30, 200, 100)",
    "prorate_": "prorate(start, leave, period_start, period_end)",
    "split3": "allocate(100, one)",
    "split_tie": "allocate(1000, w)",
    "both": "x > 3 && missing > 1",
    "either": "x > 3 || missing > 1",
    "neither": "not(x > 3) && missing > 1",
    "text_eq": 'level == "md"',
    "text_case": 'level != "MD"',
    "fund_sum": "sum_over(w, fund_ref)",
    "fund_count": "count_over(fund_ref)",
    "all_count": "count_over()",
    "days": "days_between(period_start, start)",
    "hurdle_": "hurdle(x / 100, 0.04)",
    "round4": "round(2 / 3, 4)",
    "round0": "round(2.5, 0) + round(3.5, 0) + round(-2.5, 0)",
    "abs_min": "abs(min(x - 9, 0 - x))",
}
INPUTS = {
    "x": "decimal", "cur": "decimal", "prev": "decimal", "missing": "decimal",
    "one": "decimal", "w": "decimal", "start": "date", "leave": "date", "level": "text",
}
PARAMETERS = [
    {"key": "period_start", "dtype": "date", "value": "2025-01-01"},
    {"key": "period_end", "dtype": "date", "value": "2025-12-31"},
]
ROWS = [
    {"employee_ref": "B", "fund_ref": "F1", "w": 2, "level": "md", "start": "2025-07-01"},
    {"employee_ref": "A", "fund_ref": "F1", "w": 1, "level": "MD", "start": "2025-03-15",
     "leave": "2025-06-30"},
    {"employee_ref": "C", "fund_ref": "f1", "w": 1, "level": "vp"},
    {"employee_ref": "D", "fund_ref": "F2", "w": 3, "level": "analyst"},
]
for row in ROWS:
    row.update({"x": 5, "cur": 110, "prev": 0, "one": 1})
ROWS[2]["prev"] = 100
ROWS[3]["one"] = None  # allocate excludes a null weight: 100 over three rows


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> tuple[object, object, dict]:
    compiled = plan(
        [{"order": i, "name": n, "expr": e} for i, (n, e) in enumerate(EXAMPLES.items())],
        INPUTS,
        PARAMETERS,
        payout="two_thirds",
    )
    data = frame(INPUTS, ROWS)
    return compiled, data, excel_values(compiled, data, tmp_path_factory.mktemp("examples"))


def _row(values: dict, step: str) -> dict:
    refs = [row["employee_ref"] for row in ROWS]
    return dict(zip(refs, values[step], strict=True))


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("two_thirds", 2.0000000001),
        ("compound", 1.1268250302),
        ("mod_neg_left", 2.0),
        ("mod_neg_right", -2.0),
        ("banker_up", 2.68),
        ("banker_neg", -0.12),
        ("tiny_even", 0.0),
        ("tiny_up", 0.0000000002),
        ("seventh", 14285.7142857143),
        ("percent", 0.125),
        ("no_neg_zero", 0.0),
        ("round4", 0.6667),
        ("round0", 2 + 4 - 2),
    ],
)
def test_worked_examples_to_ten_places(examples, step, expected):
    """Small magnitudes fit a double, so these agree with ENGINE.md §11 to the last digit."""
    values = examples[2][step]
    assert all(Decimal(repr(float(v))) == Decimal(repr(expected)) for v in values), values


def test_no_negative_zero_is_written(examples):
    assert all(str(float(v)) == "0.0" for v in examples[2]["no_neg_zero"])


def test_division_by_zero_is_null_and_a_guard_avoids_it(examples):
    values = examples[2]
    assert _row(values, "change_by_zero") == {"B": None, "A": None, "C": 0.1, "D": None}
    assert _row(values, "change_guarded") == {"B": 0, "A": 0, "C": 0.1, "D": 0}


def test_nulls_are_strict_except_three_valued_logic(examples):
    values = examples[2]
    assert set(values["max_null"]) == {None}
    assert set(values["both"]) == {None}  # true && null
    assert set(values["either"]) == {True}  # true || null
    assert set(values["neither"]) == {False}  # false && null


def test_text_equality_is_case_sensitive(examples):
    values = examples[2]
    assert _row(values, "text_eq") == {"B": True, "A": False, "C": False, "D": False}
    assert _row(values, "text_case") == {"B": True, "A": False, "C": True, "D": True}


def test_allocate_and_group_aggregates(examples):
    values = examples[2]
    assert _row(values, "split3") == {"A": 33.34, "B": 33.33, "C": 33.33, "D": None}
    assert _row(values, "split_tie") == {"B": 285.71, "A": 142.86, "C": 142.86, "D": 428.57}
    # fund keys are compared exactly: "f1" is not "F1"
    assert _row(values, "fund_sum") == {"B": 3, "A": 3, "C": 1, "D": 3}
    assert _row(values, "fund_count") == {"B": 2, "A": 2, "C": 1, "D": 1}
    assert set(values["all_count"]) == {4}


def test_prorate_matches_the_worked_example(examples):
    values = _row(examples[2], "prorate_")
    assert values["B"] == pytest.approx(0.5041095890, abs=1e-12)  # 184/365
    assert values["C"] == 1


def test_every_example_matches_the_reference_to_the_cent(examples, tmp_path):
    compiled, data, values = examples
    assert mismatches(compiled, data, tmp_path, values) == []


def test_guarded_aggregates_only_see_taken_rows(tmp_path):
    compiled = plan(
        [
            {"order": 1, "name": "ok", "expr": "score >= 2"},
            {"order": 2, "name": "share", "expr": "allocate(90, score)", "condition": "ok"},
            {"order": 3, "name": "total", "expr": "if (ok) then sum_over(score) else -1"},
            {"order": 4, "name": "n", "expr": "ok && count_over() > 1"},
        ],
        {"score": "decimal"},
        payout="total",
    )
    rows = [{"score": s} for s in (1, 2, 4, None, -3)]
    data = frame({"score": "decimal"}, rows)
    values = excel_values(compiled, data, tmp_path)
    assert values["share"] == [0, 30, 60, None, 0]
    assert values["total"] == [-1, 6, 6, None, -1]
    assert mismatches(compiled, data, tmp_path, values) == []


def test_sample_plan_over_generated_data_matches_to_the_cent(tmp_path):
    compiled = compile_document(load_plan(ROOT / "samples/plans/fund_bonus.json"))
    employees, funds = write(16, 3, 11, tmp_path / "data")
    data = load_inputs(compiled, employees, funds)
    assert mismatches(compiled, data, tmp_path) == []


def test_formulas_are_real_excel_text():
    compiled = plan({"bonus": "round2(salary * 0.15)"}, {"salary": "decimal"})
    layout = compile_plan(compiled, {"employee_ref": "A", "salary": "B"}, 2, 9, 3)
    assert layout.step_columns == {"bonus": "C"}
    formulas = layout.formulas(5)
    # half-even round2, the scaled value snapped at 8 places but never past 15 digits
    assert formulas["C"].startswith("=(IF(ABS(ROUND(E5*100,MIN(8,14-INT(LOG10(ABS(E5*100)+1))))")
    assert "(B5*0.15)" in formulas["D"]  # the product, rounded to 10 dp, in helper columns
    assert formulas["E"].startswith("=(IF(ABS(D5-TRUNC(D5))=0.5,")
    assert [column.key for column in layout.columns] == ["bonus", "bonus.1.scaled",
                                                         "bonus.2.value"]


def test_a_name_without_a_column_is_a_clear_error():
    compiled = plan({"bonus": "salary * 2"}, {"salary": "decimal"})
    with pytest.raises(ExcelCompileError, match="step 'bonus': no column for 'salary'"):
        compile_plan(compiled, {"employee_ref": "A"}, 2, 3, 2)


def test_rows_are_sorted_by_employee_ref_for_allocate_ties():
    compiled = plan({"s": "allocate(10, w)"}, {"w": "decimal"})
    rows = [{"employee_ref": ref, "w": 1} for ref in ("E10", "E2", "E1")]
    built = build_workbook(compiled, frame({"w": "decimal"}, rows))
    assert built.employee_refs == ("E1", "E10", "E2")


@pytest.mark.parametrize(
    ("number", "digits", "expected"),
    [(2.675, 2, 2.68), (-0.125, 2, -0.13), (1.005, 2, 1.01), (2.5, 0, 3.0), (-2.5, 0, -3.0),
     (0.1 + 0.2, 10, 0.3), (123456.785, 2, 123456.79)],
)
def test_excel_round_is_fifteen_digits_then_half_away(number, digits, expected):
    assert excel_round(number, digits) == expected


def test_text_and_date_steps_with_guards_and_defaults(tmp_path):
    compiled = plan(
        [
            {"order": 1, "name": "first", "expr": "min(start, leave)"},
            {"order": 2, "name": "last_day", "expr": "max(start, leave)",
             "condition": "days_between(start, leave) > 30", "default": '"2025-12-31"'},
            {"order": 3, "name": "band", "expr": 'if (pay > 100) then "high" else "low"',
             "condition": "pay >= 0", "default": '"none"'},
            {"order": 4, "name": "flag", "expr": 'band == "high" || pay < 0',
             "condition": "pay != 50"},
            {"order": 5, "name": "out", "expr": "pay"},
        ],
        {"start": "date", "leave": "date", "pay": "decimal"},
        payout="out",
    )
    rows = [
        {"start": "2025-01-10", "leave": "2025-03-01", "pay": 150},
        {"start": "2025-05-01", "leave": "2025-05-10", "pay": -5},
        {"start": None, "leave": "2025-05-10", "pay": 50},
    ]
    data = frame({"start": "date", "leave": "date", "pay": "decimal"}, rows)
    values = excel_values(compiled, data, tmp_path)
    assert values["band"] == ["high", "none", "low"]
    assert values["flag"] == [True, True, False]
    assert values["first"][2] is None  # min with a null date is null
    assert mismatches(compiled, data, tmp_path, values) == []


def test_a_formula_too_long_for_excel_is_a_clear_error():
    expression = "x"
    for _ in range(10):  # a balanced sum of 1024 x's: each + becomes ROUND(…+…,10)
        expression = f"({expression} + {expression})"
    compiled = plan({"points": expression}, {"x": "decimal"})
    with pytest.raises(ExcelCompileError, match="column 'points': formula longer than Excel"):
        compile_plan(compiled, {"employee_ref": "A", "x": "B"}, 2, 3, 3)


def test_inputs_start_in_column_a_without_gaps():
    compiled = plan({"s": "x + 1"}, {"x": "decimal"})
    rows = [{"employee_ref": "E1", "fund_ref": "F1", "x": 1}]
    built = build_workbook(compiled, frame({"x": "decimal"}, rows))
    assert built.input_columns == {"employee_ref": "A", "fund_ref": "B", "x": "C"}
    assert built.layout.step_columns == {"s": "D"}
