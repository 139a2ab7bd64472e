"""Parity: the Polars backend gives exactly the reference's frame (every cell, every
diagnostic) and the same overflow errors, on random typed plans over random data."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from engine.backends import polars as fast
from engine.backends import reference
from engine.backends.base import ValueOverflow
from engine.cli import app
from engine.plan import compile_plan, validate_document
from samples.generate import write
from tests.engine.budget import examples

ROOT = Path(__file__).resolve().parents[2]
DEC = pl.Decimal(38, 10)

DECIMAL_NAMES = ("x", "y", "z")
DATE_NAMES = ("d1", "d2")
SMALL = st.sampled_from(
    [
        "0",
        "1",
        "-1",
        "2",
        "3",
        "0.5",
        "-0.5",
        "2.675",
        "0.125",
        "100",
        "0.0000000001",
        "0.0000000003",
        "1.01",
        "7",
        "-7",
        "0.3333333333",
        "12.5",
    ]
)
LARGE = st.sampled_from(
    [
        "100000000000000",
        "-100000000000000",
        "9999999999999999999999999999.9999999999",
        "-9999999999999999999999999999",
        "5000000000000000000000000000",
        "12345678901234567.89",
    ]
)
TEXT_LITERALS = st.sampled_from(['"a"', '"b"', '""'])


def leaf_decimal(large: bool) -> st.SearchStrategy[str]:
    literals = st.one_of(SMALL, LARGE) if large else SMALL
    return st.one_of(st.sampled_from(DECIMAL_NAMES), literals.map(lambda v: f"({v})"))


@st.composite
def decimal_expr(draw, depth: int, large: bool) -> str:
    if depth <= 0 or draw(st.integers(0, 4)) == 0:
        return draw(leaf_decimal(large))
    sub = decimal_expr(depth - 1, large)
    kind = draw(st.integers(0, 22))
    a, b = draw(sub), draw(sub)
    match kind:
        case 0 | 1 | 2 | 3 | 4:
            return f"({a} {'+-*/%'[kind]} {b})"
        case 5:
            return f"(-{a})"
        case 6:
            return f"({a} ^ {draw(st.integers(0, 4))})"
        case 7:
            return f"{draw(st.sampled_from(['min', 'max']))}({a}, {b}, {draw(sub)})"
        case 8:
            return f"{draw(st.sampled_from(['abs', 'round2', 'pct']))}({a})"
        case 9:
            return f"round({a}, {draw(st.integers(0, 10))})"
        case 10:
            return f"{draw(st.sampled_from(['clip', 'cap_floor']))}({a}, {b}, {draw(sub)})"
        case 11:
            return f"{draw(st.sampled_from(['hurdle', 'pct_change']))}({a}, {b})"
        case 12:
            return f"days_between({draw(date_expr(1))}, {draw(date_expr(1))})"
        case 13:
            dates = [draw(date_expr(1)) for _ in range(4)]
            return f"prorate({', '.join(dates)})"
        case 14 | 15:
            return f"(if ({draw(bool_expr(depth - 1, large))}) then {a} else {b})"
        case 16 | 17:
            key = draw(st.sampled_from(["", ", g", ", fund_ref", ", flag"]))
            return f"sum_over({a}{key})"
        case 18:
            return f"count_over({draw(st.sampled_from(['', 'g', 'fund_ref']))})"
        case _:
            key = draw(st.sampled_from(["", ", g", ", fund_ref"]))
            return f"allocate({a}, {b}{key})"


@st.composite
def date_expr(draw, depth: int) -> str:
    if depth <= 0 or draw(st.booleans()):
        return draw(st.sampled_from(DATE_NAMES))
    a, b = draw(date_expr(depth - 1)), draw(date_expr(depth - 1))
    return f"{draw(st.sampled_from(['min', 'max']))}({a}, {b})"


@st.composite
def bool_expr(draw, depth: int, large: bool) -> str:
    kind = draw(st.integers(0, 7 if depth > 0 else 2))
    match kind:
        case 0:
            return draw(st.sampled_from(["flag", "true", "false"]))
        case 1:
            return f"(g {draw(st.sampled_from(['==', '!=']))} {draw(TEXT_LITERALS)})"
        case 2:
            op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
            return f"({draw(date_expr(0))} {op} {draw(date_expr(0))})"
        case 3 | 4:
            op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
            left, right = draw(decimal_expr(depth - 1, large)), draw(decimal_expr(depth - 1, large))
            return f"({left} {op} {right})"
        case 5 | 6:
            op = draw(st.sampled_from(["&&", "||"]))
            left, right = draw(bool_expr(depth - 1, large)), draw(bool_expr(depth - 1, large))
            return f"({left} {op} {right})"
        case _:
            return f"not({draw(bool_expr(depth - 1, large))})"


def decimal_values(large: bool) -> st.SearchStrategy[Decimal | None]:
    values = st.one_of(
        st.none(),
        SMALL.map(Decimal),
        st.integers(-(10**12), 10**12).map(lambda i: Decimal(i).scaleb(-4)),
        *([LARGE.map(Decimal)] if large else []),
    )
    return values


@st.composite
def frames(draw, large: bool) -> pl.DataFrame:
    size = draw(st.integers(1, 9))
    refs = draw(st.permutations([f"E{i}" for i in range(1, size + 1)]))
    column = lambda strategy: draw(st.lists(strategy, min_size=size, max_size=size))  # noqa: E731
    base = date(2025, 1, 1)
    dates = st.one_of(st.none(), st.integers(-40, 400).map(lambda d: base + timedelta(days=d)))
    data = {
        "employee_ref": refs,
        "fund_ref": column(st.sampled_from(["F1", "F2", None])),
        "x": column(decimal_values(large)),
        "y": column(decimal_values(large)),
        "z": column(decimal_values(large)),
        "flag": column(st.sampled_from([True, False, None])),
        "g": column(st.sampled_from(["a", "b", "", None])),
        "d1": column(dates),
        "d2": column(dates),
    }
    schema = {
        "employee_ref": pl.String,
        "fund_ref": pl.String,
        "x": DEC,
        "y": DEC,
        "z": DEC,
        "flag": pl.Boolean,
        "g": pl.String,
        "d1": pl.Date,
        "d2": pl.Date,
    }
    return pl.DataFrame(data, schema=schema)


INPUTS = [
    {"key": "x", "dtype": "decimal", "required": False},
    {"key": "y", "dtype": "decimal", "required": False},
    {"key": "z", "dtype": "decimal", "required": False},
    {"key": "flag", "dtype": "bool", "required": False},
    {"key": "g", "dtype": "text", "required": False},
    {"key": "d1", "dtype": "date", "required": False},
    {"key": "d2", "dtype": "date", "required": False},
]


@st.composite
def plans(draw, large: bool):
    first = draw(decimal_expr(3, large))
    second = draw(bool_expr(2, large)).replace("flag", draw(st.sampled_from(["flag", "(s1 > 0)"])))
    third = draw(decimal_expr(3, large)).replace("z", "s1")
    steps = [
        {"order": 1, "name": "s1", "expr": first},
        {"order": 3, "name": "s2", "expr": second},
        {"order": 2, "name": "s3", "expr": third},
    ]
    if draw(st.booleans()):
        steps[2]["condition"] = "s2"
        steps[2]["default"] = draw(st.sampled_from(["0", "-1.5"]))
    if draw(st.booleans()):
        steps[0]["condition"] = draw(bool_expr(1, large))
    document = {
        "name": "random",
        "effective_from": "2025-01-01",
        "currency": "USD",
        "inputs": INPUTS,
        "steps": steps,
        "payout": "s3",
    }
    return compile_plan(validate_document(document))


def assert_same(plan, frame: pl.DataFrame) -> None:
    """The same frame, or the same ValueOverflow (step and employee) from both backends."""
    note(repr([(s.name, s.condition, s.expr) for s in plan.document.steps]))
    note(repr(frame.rows()))
    try:
        expected = reference.evaluate(plan, frame).frame
    except ValueOverflow as error:
        with pytest.raises(ValueOverflow) as raised:
            fast.evaluate(plan, frame)
        assert (raised.value.step, raised.value.employee_ref) == (error.step, error.employee_ref)
        return
    assert_frame_equal(fast.evaluate(plan, frame).frame, expected)


SETTINGS = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(data=st.data())
def test_random_plans_agree_on_everyday_values(data) -> None:
    plan = data.draw(plans(large=False))
    assert_same(plan, data.draw(frames(large=False)))


@SETTINGS
@given(data=st.data())
def test_random_plans_agree_with_large_magnitudes_and_overflow(data) -> None:
    plan = data.draw(plans(large=True))
    assert_same(plan, data.draw(frames(large=True)))


def test_cli_eval_of_sample_plan_is_identical_on_both_engines(tmp_path: Path) -> None:
    employees, funds = write(400, 9, seed=3, out=tmp_path)
    runner = CliRunner()
    outputs = {}
    for engine in ("polars", "reference"):
        out = tmp_path / f"{engine}.csv"
        args = [
            "eval",
            str(ROOT / "samples/plans/fund_bonus.json"),
            str(employees),
            "--funds",
            str(funds),
            "--engine",
            engine,
            "-o",
            str(out),
        ]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        outputs[engine] = out.read_bytes()
    assert outputs["polars"] == outputs["reference"]
    assert outputs["polars"].count(b"\n") == 401
