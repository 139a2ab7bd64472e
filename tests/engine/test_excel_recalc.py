"""The column-wise recalculation (engine.backends.excel_recalc.RowModel): its fast mode (one
`formulas` call per element-wise function over a whole column, numpy inside per-row
SUMPRODUCTs) gives exactly what its exact mode gives (every `formulas` function called once per
row, as Excel does cell by cell), on every catalog function, guarded aggregates and the sample
plan; and the reference-shape errors it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.backends.excel import compile_plan
from engine.backends.excel_recalc import RowModel, _distinct_rows, is_error
from engine.data import load_inputs
from engine.plan import compile_plan as compile_document
from engine.plan import load_plan
from samples.generate import write
from tests.engine.excel_harness import saved_inputs
from tests.engine.plans import frame, plan
from tests.engine.test_excel_backend import EXAMPLES, INPUTS, PARAMETERS, ROWS

ROOT = Path(__file__).resolve().parents[2]


def _both_modes(compiled, data, tmp_path: Path) -> tuple[dict, dict]:
    built, inputs = saved_inputs(compiled, data, tmp_path)
    fast = RowModel(built.layout).calculate(inputs)
    exact = RowModel(built.layout, exact=True).calculate(inputs)
    return fast, exact


def _same(a: Any, b: Any) -> bool:
    """Identical values: errors by kind, numbers bit for bit, booleans not numbers."""
    if is_error(a) or is_error(b):
        return is_error(a) and is_error(b) and str(a) == str(b)
    return type(a) is type(b) and repr(a) == repr(b)


def _differences(fast: dict, exact: dict) -> list[str]:
    return [f"{letter}[{i}]: fast {f!r}, exact {e!r}"
            for letter in exact for i, (f, e) in enumerate(zip(fast[letter], exact[letter],
                                                               strict=True))
            if not _same(f, e)]


def test_fast_mode_equals_exact_mode_on_every_catalog_function(tmp_path):
    compiled = plan(
        [{"order": i, "name": n, "expr": e} for i, (n, e) in enumerate(EXAMPLES.items())],
        INPUTS, PARAMETERS, payout="two_thirds",
    )
    fast, exact = _both_modes(compiled, frame(INPUTS, ROWS), tmp_path)
    assert _differences(fast, exact) == []
    assert any(is_error(v) for values in exact.values() for v in values)  # nulls were seen


def test_fast_mode_equals_exact_mode_on_guarded_aggregates_with_text_keys(tmp_path):
    inputs = {"score": "decimal", "team": "text"}
    compiled = plan(
        [
            {"order": 1, "name": "ok", "expr": "score >= 2"},
            {"order": 2, "name": "share", "expr": "allocate(90, score, team)",
             "condition": "ok"},
            {"order": 3, "name": "total", "expr": "if (ok) then sum_over(score, team) else -1"},
            {"order": 4, "name": "n", "expr": 'ok && count_over(team) > 1 || team == "B"'},
        ],
        inputs, payout="total",
    )
    rows = [{"score": s, "team": t} for s, t in
            ((1, "a"), (2, "A"), (4, "a"), (None, "b"), (3, "B"), (5, None), (2, "a"))]
    fast, exact = _both_modes(compiled, frame(inputs, rows), tmp_path)
    assert _differences(fast, exact) == []


def test_fast_mode_equals_exact_mode_on_the_sample_plan(tmp_path):
    compiled = compile_document(load_plan(ROOT / "samples/plans/fund_bonus.json"))
    employees, funds = write(20, 3, 5, tmp_path / "data")
    fast, exact = _both_modes(compiled, load_inputs(compiled, employees, funds), tmp_path)
    assert _differences(fast, exact) == []


def test_inputs_must_cover_every_row():
    compiled = plan({"s": "x + 1"}, {"x": "decimal"})
    layout = compile_plan(compiled, {"employee_ref": "A", "x": "B"}, 2, 4, 3)
    with pytest.raises(ValueError, match="column B: 2 cells for 3 rows"):
        RowModel(layout).calculate({"A": ["E1", "E2", "E3"], "B": [1, 2]})
    with pytest.raises(ValueError, match="column C reads B, which is empty"):
        RowModel(layout).calculate({"A": ["E1", "E2", "E3"]})


def test_rows_reading_the_same_cells_share_one_evaluation(tmp_path, monkeypatch):
    """An aggregate is evaluated once per distinct group, not once per row (linear in the
    rows), with the same values as the exact mode; ROW() columns stay per row."""
    inputs = {"pool": "decimal", "w": "decimal"}
    compiled = plan([{"order": 1, "name": "share", "expr": "allocate(pool, w, fund_ref)"},
                     {"order": 2, "name": "total", "expr": "sum_over(w, fund_ref)"}],
                    inputs, payout="share")
    rows = [{"employee_ref": f"E{i:03d}", "fund_ref": f"F{i % 3}", "pool": 100 + i % 3,
             "w": 1 + i % 4} for i in range(60)]
    built, cells = saved_inputs(compiled, frame(inputs, rows), tmp_path)
    sizes: dict[str, int] = {}
    evaluate = RowModel._evaluate

    def counted(self, formula, columns, ranges, which, *given):
        sizes[formula.letter] = len(which)
        return evaluate(self, formula, columns, ranges, which, *given)

    monkeypatch.setattr(RowModel, "_evaluate", counted)
    fast = RowModel(built.layout).calculate(cells)
    monkeypatch.setattr(RowModel, "_evaluate", evaluate)
    exact = RowModel(built.layout, exact=True).calculate(cells)
    assert _differences(fast, exact) == []
    total = built.layout.step_columns["total"]
    assert sizes[total] == 3  # three funds
    rows_column = next(c.letter for c in built.layout.columns if c.key.endswith(".row"))
    assert sizes[rows_column] == 60


def test_a_group_total_inside_a_per_row_formula_is_evaluated_once_per_group(tmp_path,
                                                                            monkeypatch):
    """`w / sum_over(w, fund_ref)` reads each row's own w, so its rows are all different;
    its SUMPRODUCT reads only the group's key and is computed once per fund, not once per row
    over the whole column (quadratic), with the same values as the exact mode."""
    inputs = {"w": "decimal"}
    compiled = plan([{"order": 1, "name": "part", "expr": "w / sum_over(w, fund_ref)"}],
                    inputs, payout="part")
    rows = [{"employee_ref": f"E{i:03d}", "fund_ref": f"F{i % 3}", "w": 1 + i}
            for i in range(60)]
    built, cells = saved_inputs(compiled, frame(inputs, rows), tmp_path)
    sizes: dict[str, list[int]] = {}
    evaluate = RowModel._evaluate

    def counted(self, formula, columns, ranges, which, *given):
        sizes.setdefault(formula.letter, []).append(len(which))
        return evaluate(self, formula, columns, ranges, which, *given)

    monkeypatch.setattr(RowModel, "_evaluate", counted)
    fast = RowModel(built.layout).calculate(cells)
    monkeypatch.setattr(RowModel, "_evaluate", evaluate)
    exact = RowModel(built.layout, exact=True).calculate(cells)
    assert _differences(fast, exact) == []
    value = next(c.letter for c in built.layout.columns if c.key == "part.4.value")
    assert sizes[value] == [3, 60]  # the fund's total once per fund, then the rows


def test_distinct_rows_tell_types_signs_and_errors_apart():
    from formulas.functions import Error

    cells = [1, True, 1.0, 0.0, -0.0, "1", Error("#N/A"), Error("#DIV/0!"), 1]
    unique, inverse = _distinct_rows([cells], len(cells))
    assert len(unique) == 8 and inverse[-1] == inverse[0] and unique[0] == 0
