"""Plan validation: every problem reported together, each located and explained."""

from decimal import Decimal

import pytest

from engine.backends.reference import evaluate
from engine.check import check_expression, evaluation_order
from engine.dsl.ast import Type
from engine.plan import PlanInvalid, compile_plan
from tests.engine.plans import document, frame, plan


def problems_of(steps, inputs=None, parameters=None, payout=None, overrides=None):
    with pytest.raises(PlanInvalid) as info:
        compile_plan(document(steps, inputs, parameters, payout), overrides)
    return info.value.problems


def only(problems, code):
    found = [p for p in problems if p.code == code]
    assert found, f"no {code} among {[str(p) for p in problems]}"
    return found


def test_valid_plan_compiles_with_typed_trees_and_orders():
    compiled = plan(
        [
            {"order": 30, "name": "total", "expr": "bonus + extra"},
            {"order": 10, "name": "bonus", "expr": "salary * rate"},
            {"order": 20, "name": "extra", "expr": "if (senior) then 100 else 0"},
        ],
        inputs={"salary": "decimal", "senior": "bool"},
        parameters=[{"key": "rate", "dtype": "decimal", "value": "0.15"}],
    )
    assert compiled.display_order == ("bonus", "extra", "total")
    assert [s.name for s in compiled.steps] == ["bonus", "extra", "total"]
    assert compiled.dependencies["total"] == frozenset({"bonus", "extra"})
    assert compiled.step("total").reads == frozenset({"bonus", "extra"})
    assert compiled.step("bonus").expr.type == Type.DECIMAL
    assert compiled.input_types["employee_ref"] == Type.TEXT
    assert compiled.input_types == {
        "employee_ref": Type.TEXT,
        "fund_ref": Type.TEXT,
        "salary": Type.DECIMAL,
        "senior": Type.BOOL,
    }
    assert compiled.input_scopes["salary"] == "employee"
    assert not compiled.uses_fund_ref
    assert str(compiled.parameters["rate"][1]) == "0.1500000000"
    assert len(compiled.plan_hash) == 64


def test_evaluation_order_is_topological_with_ties_by_display_order():
    compiled = plan(
        [
            {"order": 1, "name": "c", "expr": "b + a"},
            {"order": 2, "name": "b", "expr": "a * 2"},
            {"order": 3, "name": "z", "expr": "1"},
            {"order": 3, "name": "y", "expr": "2"},
            {"order": 4, "name": "a", "expr": "5"},
        ],
        payout="c",
    )
    assert compiled.display_order == ("c", "b", "y", "z", "a")
    assert [s.name for s in compiled.steps] == ["y", "z", "a", "b", "c"]


def test_evaluation_order_reports_steps_left_on_cycles():
    order, cyclic = evaluation_order(
        ("a", "b", "c", "d"),
        {"a": frozenset({"b"}), "b": frozenset({"a"}), "c": frozenset({"a"}), "d": frozenset()},
    )
    assert order == ["d"]
    assert cyclic == {"a", "b", "c"}


def test_cycle_message_lists_the_cycle():
    problems = problems_of({"a": "c + 1", "b": "a * 2", "c": "b - 1", "d": "d + 1", "p": "a"})
    messages = sorted(p.message for p in only(problems, "cycle"))
    assert messages == [
        "circular dependency: a -> c -> b -> a",
        "circular dependency: d -> d",
    ]
    assert {p.step for p in only(problems, "cycle")} == {"a", "d"}
    assert not [p for p in problems if p.code == "unknown_name"]


def test_unknown_name_suggests_the_closest_name():
    problems = problems_of({"bonus": "base_salray * 0.1"}, inputs={"base_salary": "decimal"})
    (problem,) = only(problems, "unknown_name")
    assert problem.message == "unknown name 'base_salray'; did you mean 'base_salary'?"
    assert (problem.step, problem.field, problem.line, problem.column) == ("bonus", "expr", 1, 1)


def test_every_problem_is_reported_at_once():
    problems = problems_of(
        [
            {"order": 1, "name": "a", "expr": "x + 1"},
            {"order": 2, "name": "a", "expr": "2"},
            {"order": 3, "name": "b", "expr": "flag * 2"},
            {"order": 4, "name": "c", "expr": "1 +", "condition": "x"},
            {"order": 5, "name": "x", "expr": "3"},
            {"order": 6, "name": "d", "expr": "round(x, 11)"},
            {"order": 7, "name": "e", "expr": "1", "default": "true"},
        ],
        inputs={"x": "decimal", "flag": "bool"},
        payout="nope",
    )
    assert sorted(p.code for p in problems) == [
        "duplicate_step",
        "invalid_default",
        "payout",
        "shadowing",
        "syntax",
        "type_error",
        "type_error",
        "type_error",
    ]
    by_step = {(p.step, p.field) for p in problems}
    assert ("c", "expr") in by_step and ("c", "condition") in by_step
    assert ("e", "default") in by_step


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ('x + "a"', "'+' needs decimals, got decimal and text"),
        ("flag * 2", "'*' needs decimals, got bool and decimal"),
        ("-flag", "unary '-' needs a decimal, got bool"),
        ("x && flag", "'&&' needs bools, got decimal and bool"),
        ("not(x)", "not() argument 'b' must be bool, got decimal"),
        ('x == "1"', "'==' compares values of one type, got decimal and text"),
        ('t < "b"', "'<' orders decimals or dates only, got text"),
        ("flag >= flag", "'>=' orders decimals or dates only, got bool"),
        ("if (x) then 1 else 2", "'if' condition must be bool, got decimal"),
        ('if (flag) then 1 else "2"', "branches must have the same type"),
        ("max(x, d)", "arguments must all have one type, got decimal, date"),
        ("days_between(x, d)", "argument 'a' must be date, got decimal"),
        ("round(x, 2.5)", "must be a whole-number literal from 0 to 10"),
        ("round(x, y)", "must be a whole-number literal from 0 to 10"),
    ],
)
def test_type_errors(expr, fragment):
    inputs = {"x": "decimal", "y": "decimal", "flag": "bool", "t": "text", "d": "date"}
    problems = problems_of({"s": expr, "p": "1"}, inputs=inputs)
    (problem,) = only(problems, "type_error")
    assert fragment in problem.message
    assert (problem.step, problem.field) == ("s", "expr")


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("max(x)", "max() takes at least 2 arguments (max(a, b, ...)), got 1"),
        ("abs(x, x)", "abs() takes 1 argument (abs(x)), got 2"),
        ("round(x)", "round() takes 2 arguments (round(x, n)), got 1"),
        ("allocate(x)", "allocate() takes 2 to 3 arguments (allocate(pool, weight, [key])), got 1"),
        ("count_over(t, t)", "count_over() takes 0 to 1 arguments"),
        ("prorate(d, d, d)", "prorate() takes 4 arguments"),
    ],
)
def test_arity_errors(expr, fragment):
    problems = problems_of({"s": expr, "p": "1"}, inputs={"x": "decimal", "t": "text", "d": "date"})
    (problem,) = only(problems, "arity")
    assert fragment in problem.message


def test_type_error_points_at_the_offending_argument():
    problems = problems_of({"s": "max(1,\n  flag)"}, inputs={"flag": "bool"})
    (problem,) = only(problems, "type_error")
    assert (problem.line, problem.column) == (2, 3)


def test_condition_must_be_bool_and_default_must_match_the_step_type():
    problems = problems_of(
        [
            {"order": 1, "name": "a", "expr": "1", "condition": "x"},
            {"order": 2, "name": "b", "expr": "x > 1", "default": "0"},
            {"order": 3, "name": "c", "expr": "d", "default": '"2025-13-01"'},
            {"order": 4, "name": "e", "expr": "x", "default": "x + 1"},
        ],
        inputs={"x": "decimal", "d": "date"},
        payout="a",
    )
    assert [(p.step, p.field) for p in problems] == [
        ("a", "condition"),
        ("b", "default"),
        ("c", "default"),
        ("e", "default"),
    ]
    assert "condition must be bool, got decimal" in problems[0].message
    assert "default must be a bool literal" in problems[1].message


def test_valid_defaults_become_typed_literals():
    compiled = plan(
        [
            {"order": 1, "name": "a", "expr": "x", "condition": "f", "default": "-2.5"},
            {"order": 2, "name": "b", "expr": "f", "condition": "f", "default": "true"},
            {"order": 3, "name": "c", "expr": "t", "condition": "f", "default": '"none"'},
            {"order": 4, "name": "d", "expr": "dt", "condition": "f", "default": '"2025-02-01"'},
            {"order": 5, "name": "e", "expr": "dt", "condition": "f"},
            {"order": 6, "name": "g", "expr": "x", "condition": "f", "default": 3},
        ],
        inputs={"x": "decimal", "f": "bool", "t": "text", "dt": "date"},
        payout="a",
    )
    defaults = {s.name: s.default for s in compiled.steps}
    assert str(defaults["a"].value) == "-2.5"
    assert defaults["b"].value is True
    assert defaults["c"].value == "none"
    assert defaults["d"].value.isoformat() == "2025-02-01"
    assert defaults["e"] is None
    assert str(defaults["g"].value) == "3"


def test_names_reserved_shadowed_and_invalid():
    problems = problems_of(
        [
            {"order": 1, "name": "fund_ref", "expr": "1"},
            {"order": 2, "name": "rate", "expr": "1"},
            {"order": 3, "name": "__x", "expr": "1"},
            {"order": 4, "name": "max", "expr": "1"},
            {"order": 5, "name": "else", "expr": "1"},
            {"order": 6, "name": "Bonus", "expr": "1"},
            {"order": 7, "name": "p", "expr": "1"},
        ],
        inputs={"employee_ref": "text", "rate": "decimal"},
        parameters=[{"key": "rate", "dtype": "decimal", "value": 1}],
        payout="p",
    )
    assert [(p.code, p.step) for p in problems] == [
        ("reserved_name", None),
        ("duplicate_name", None),
        ("reserved_name", "fund_ref"),
        ("shadowing", "rate"),
        ("invalid_name", "__x"),
        ("invalid_name", "max"),
        ("invalid_name", "else"),
        ("invalid_name", "Bonus"),
    ]


def test_payout_must_be_a_decimal_step():
    (problem,) = problems_of({"bonus": "1"}, payout="bonsu")
    assert problem.code == "payout"
    assert problem.message == "payout 'bonsu' is not a step; did you mean 'bonus'?"
    (problem,) = problems_of({"flag": "true"}, payout="flag")
    assert problem.message == "payout step 'flag' must be decimal, got bool"


def test_parameter_overrides_are_typed_and_checked():
    parameters = [{"key": "pool", "dtype": "decimal", "value": "100"}]
    compiled = compile_plan(document({"p": "pool"}, parameters=parameters), {"pool": "250.5"})
    assert str(compiled.parameters["pool"][1]) == "250.5000000000"
    problems = problems_of({"p": "pool"}, parameters=parameters, overrides={"pol": 1})
    assert problems[0].message == "override of unknown parameter 'pol'; did you mean 'pool'?"
    problems = problems_of({"p": "pool"}, parameters=parameters, overrides={"pool": "abc"})
    assert problems[0].code == "invalid_value"


def test_literal_scale_is_a_plan_problem():
    (problem,) = problems_of({"p": "x * 0.00000000001"}, inputs={"x": "decimal"})
    assert problem.code == "literal_scale"
    assert (problem.line, problem.column) == (1, 5)


def test_check_expression_types_a_single_expression():
    node, problems = check_expression(
        'score >= 0.8 && level == "vp"', {"score": Type.DECIMAL, "level": Type.TEXT}
    )
    assert problems == []
    assert node.type == Type.BOOL
    node, problems = check_expression("scor + 1", {"score": Type.DECIMAL})
    assert [p.message for p in problems] == ["unknown name 'scor'; did you mean 'score'?"]
    node, problems = check_expression("a.b", {})
    assert node is None and problems[0].code == "syntax" and problems[0].column == 2


def test_problem_text_names_step_field_and_position():
    (problem,) = problems_of({"p": "1 + missing"})
    assert str(problem) == "step 'p', expr, line 1, column 5: unknown name 'missing'"


def test_syntax_problems_keep_the_caret_excerpt_apart_from_the_message():
    (problem,) = problems_of({"p": "salary.amount"}, inputs={"salary": "decimal"})
    assert problem.message.startswith("attribute access")
    assert problem.excerpt == "salary.amount\n      ^"
    assert str(problem).endswith("\nsalary.amount\n      ^")


def test_a_step_on_two_cycles_reports_each_cycle_once_following_names_in_order():
    """Each cycle is reported once, and in a reproducible order: cycles are searched from the
    steps in display order, following each step's dependencies in name order."""
    problems = problems_of({"a": "c + b", "b": "a * 2", "c": "a - 1", "p": "a"}, payout="p")
    assert [p.message for p in only(problems, "cycle")] == [
        "circular dependency: a -> b -> a",
        "circular dependency: a -> c -> a",
    ]


def test_check_expression_locates_its_problems_in_the_expr_field():
    """A lone expression (the editor's live check) has no step, but its problems still say
    where: the field `expr`, line and column."""
    _, syntax = check_expression("x +", {"x": Type.DECIMAL})
    _, typing = check_expression("y * 2", {"x": Type.DECIMAL})
    assert [str(p).split("\n")[0] for p in syntax + typing] == [
        "expr, line 1, column 4: unexpected end of expression",
        "expr, line 1, column 1: unknown name 'y'",
    ]
    assert [(p.step, p.field) for p in syntax + typing] == [(None, "expr"), (None, "expr")]


def test_a_problem_without_a_location_is_just_its_message():
    from engine.check import Problem

    assert str(Problem("payout", "no payout")) == "no payout"


def test_a_signed_number_default_keeps_its_sign_and_every_digit():
    """`+2.5` is 2.5 and `-2.5` is -2.5: the sign is folded into the default literal exactly,
    also for a literal of 37 significant digits (R10 keeps 38; Python's default decimal
    context would round it to 28)."""
    wide = "123456789012345678901234567.1234567891"
    defaults = ["+2.5", "-2.5", f"-{wide}", "-0"]
    compiled = plan(
        [
            {"order": n, "name": f"s{n}", "expr": "x", "condition": "f", "default": default}
            for n, default in enumerate(defaults)
        ],
        inputs={"x": "decimal", "f": "bool"},
        payout="s0",
    )
    assert [str(s.default.value) for s in compiled.steps] == ["2.5", "-2.5", f"-{wide}", "0"]


def test_a_default_of_another_type_is_refused_not_converted():
    """A quoted date is no bool default, and a number is no date default."""
    problems = problems_of(
        [
            {"order": 1, "name": "b", "expr": "x > 1", "default": '"2025-01-01"'},
            {"order": 2, "name": "d", "expr": "dt", "default": "5"},
            {"order": 3, "name": "p", "expr": "x"},
        ],
        inputs={"x": "decimal", "dt": "date"},
        payout="p",
    )
    assert [(p.code, p.step, p.field) for p in problems] == [
        ("invalid_default", "b", "default"),
        ("invalid_default", "d", "default"),
    ]


def test_a_parameter_override_keeps_the_declared_type_and_takes_the_new_value():
    parameters = [{"key": "rate", "dtype": "decimal", "value": "0.1"}]
    compiled = compile_plan(
        document({"p": "x * rate"}, {"x": "decimal"}, parameters), {"rate": "0.25"}
    )
    assert compiled.parameters["rate"] == (Type.DECIMAL, Decimal("0.25"))
    result = evaluate(compiled, frame({"x": "decimal"}, [{"x": 4}])).frame
    assert result["p"].to_list() == [Decimal(1)]


def test_type_errors_name_the_accepted_types_and_point_at_the_operation():
    """An operation is located at its left operand, so a nested one is found in the text;
    an argument's accepted types are listed joined by 'or'."""
    scope = {"x": Type.DECIMAL}
    messages = [
        str(problem)
        for text in ('min("a", 1)', '1 + (x + "a")', '1 + (x < "a")')
        for problem in check_expression(text, scope)[1]
    ]
    assert messages == [
        "expr, line 1, column 5: min() argument 'a' must be date or decimal, got text",
        "expr, line 1, column 6: '+' needs decimals, got decimal and text",
        "expr, line 1, column 6: '<' compares values of one type, got decimal and text",
    ]


def test_a_call_with_a_bad_argument_has_no_type_so_its_users_are_not_reported_again():
    """One mistake, one problem: `round(x, 11) + "a"` reports the literal argument, not also
    a '+' of decimal and text built on the failed call."""
    _, problems = check_expression('round(x, 11) + "a"', {"x": Type.DECIMAL})
    assert [(p.column, p.message) for p in problems] == [
        (10, "round() argument 'n' must be a whole-number literal from 0 to 10")
    ]


def test_declaring_a_reserved_input_says_where_and_why():
    problems = problems_of({"p": "1"}, inputs={"fund_ref": "text"})
    assert [(p.code, p.field, p.message) for p in problems] == [
        (
            "reserved_name",
            "inputs",
            "inputs[0] 'fund_ref': 'fund_ref' is reserved (it is always available as a text input)",
        )
    ]


def test_an_invalid_declared_name_is_one_problem_naming_where_and_is_not_declared():
    """An invalid key is reported once, at its field, and not also as a duplicate when it
    appears twice: an invalid name is never claimed."""
    parameters = [{"key": "Rate", "dtype": "decimal", "value": 1}] * 2
    problems = problems_of({"p": "1"}, parameters=parameters)
    reason = "'Rate' is not a valid name (lower case letters, digits, '_'; up to 63)"
    assert [(p.code, p.field, p.message) for p in problems] == [
        ("invalid_name", "parameters", f"parameters[0] 'Rate': {reason}"),
        ("invalid_name", "parameters", f"parameters[1] 'Rate': {reason}"),
    ]
    # Not declared: a step reading a near miss gets no suggestion of the invalid name.
    problems = problems_of({"p": "rate"}, inputs={"Rate": "decimal"})
    assert [p.message for p in problems if p.code == "unknown_name"] == ["unknown name 'rate'"]
