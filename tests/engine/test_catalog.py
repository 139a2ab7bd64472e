"""The function catalog: complete, self-consistent, and in step with the reference backend."""

import pytest

from engine.backends.reference import FUNCTIONS
from engine.catalog import CATALOG, CATALOG_VERSION
from engine.check import check_expression
from engine.dsl.ast import Call, Type, walk
from engine.dsl.parser import KEYWORDS, NAME_PATTERN, parse

ENGINE_MD_FUNCTIONS = {
    "min",
    "max",
    "abs",
    "not",
    "round2",
    "round",
    "clip",
    "cap_floor",
    "hurdle",
    "pct",
    "pct_change",
    "days_between",
    "prorate",
    "sum_over",
    "count_over",
    "allocate",
}


def test_catalog_v1_has_exactly_the_engine_md_functions():
    assert CATALOG_VERSION == "1"
    assert set(CATALOG) == ENGINE_MD_FUNCTIONS


def test_every_catalog_function_has_a_reference_implementation():
    assert set(FUNCTIONS) == set(CATALOG)


@pytest.mark.parametrize("spec", CATALOG.values(), ids=lambda spec: spec.name)
def test_spec_is_documented_and_its_example_calls_it(spec):
    assert NAME_PATTERN.fullmatch(spec.name) and spec.name not in KEYWORDS
    assert spec.doc and spec.doc.endswith(".")
    calls = [node for node in walk(parse(spec.example)) if isinstance(node, Call)]
    assert calls[0].func == spec.name
    assert spec.min_args <= len(calls[0].args) <= (spec.max_args or 99)


def test_aggregates_are_flagged():
    assert {s.name for s in CATALOG.values() if s.aggregate} == {
        "sum_over",
        "count_over",
        "allocate",
    }


def test_signature_and_arity_text():
    assert CATALOG["max"].signature() == "max(a, b, ...)"
    assert CATALOG["max"].arity_text() == "at least 2 arguments"
    assert CATALOG["allocate"].signature() == "allocate(pool, weight, [key])"
    assert CATALOG["count_over"].arity_text() == "0 to 1 arguments"
    assert CATALOG["abs"].arity_text() == "1 argument"
    assert CATALOG["round"].literal_int_args == {1: (0, 10)}


SCOPE = {
    "x": Type.DECIMAL,
    "y": Type.DECIMAL,
    "d": Type.DATE,
    "e": Type.DATE,
    "b": Type.BOOL,
    "t": Type.TEXT,
}


@pytest.mark.parametrize(
    ("expr", "result"),
    [
        ("min(x, y, 1)", Type.DECIMAL),
        ("max(d, e)", Type.DATE),
        ("abs(x)", Type.DECIMAL),
        ("not(b)", Type.BOOL),
        ("round2(x)", Type.DECIMAL),
        ("round(x, 0)", Type.DECIMAL),
        ("clip(x, 0, y)", Type.DECIMAL),
        ("cap_floor(x, 1, 0)", Type.DECIMAL),
        ("hurdle(x, y)", Type.DECIMAL),
        ("pct(x)", Type.DECIMAL),
        ("pct_change(x, y)", Type.DECIMAL),
        ("days_between(d, e)", Type.DECIMAL),
        ("prorate(d, e, d, e)", Type.DECIMAL),
        ("sum_over(x)", Type.DECIMAL),
        ("sum_over(x, t)", Type.DECIMAL),
        ("sum_over(x, d)", Type.DECIMAL),
        ("count_over()", Type.DECIMAL),
        ("count_over(b)", Type.DECIMAL),
        ("allocate(x, y)", Type.DECIMAL),
        ("allocate(x, y, t)", Type.DECIMAL),
    ],
)
def test_result_types(expr, result):
    node, problems = check_expression(expr, SCOPE)
    assert problems == []
    assert node.type == result


@pytest.mark.parametrize(
    "expr",
    [
        "min(t, t)",
        "max(b, b)",
        "abs(d)",
        "round2(b)",
        "clip(x, d, y)",
        "pct(t)",
        "days_between(x, d)",
        "prorate(d, e, x, e)",
        "sum_over(t)",
        "allocate(x, t)",
        "round(x, 11)",
        "round(x, -1)",
        "hurdle(x)",
        "not(b, b)",
    ],
)
def test_rejected_calls(expr):
    _, problems = check_expression(expr, SCOPE)
    assert problems and problems[0].code in ("type_error", "arity")
