"""Plan documents from JSON and YAML: exact numbers, and errors that name the field."""

import json
from decimal import Decimal

import pytest

from engine.plan import PlanInvalid, PlanLoadError, load_plan, validate_document

PLAN = {
    "name": "2025 Analyst Bonus Plan",
    "version": 1,
    "effective_from": "2025-01-01",
    "effective_to": None,
    "currency": "USD",
    "inputs": [
        {
            "key": "score",
            "label": "Score",
            "dtype": "decimal",
            "scope": "employee",
            "required": True,
        },
        {"key": "start_date", "dtype": "date", "required": False, "default": None},
        {"key": "headcount", "dtype": "int", "default": 1},
    ],
    "parameters": [{"key": "pool_amount", "dtype": "decimal", "value": "2500000"}],
    "steps": [
        {
            "order": 10,
            "name": "mult",
            "expr": "if(score >= 0.8) then 1.2 else 0.9",
            "condition": "",
            "default": 0,
            "notes": "",
        }
    ],
    "payout": "mult",
}


def test_json_and_yaml_load_the_same_document(tmp_path):
    json_path = tmp_path / "plan.json"
    json_path.write_text(json.dumps(PLAN))
    yaml_path = tmp_path / "plan.yaml"
    yaml_path.write_text(
        "name: 2025 Analyst Bonus Plan\nversion: 1\neffective_from: 2025-01-01\n"
        "effective_to: null\ncurrency: USD\ninputs:\n"
        "  - {key: score, label: Score, dtype: decimal, scope: employee, required: true}\n"
        "  - {key: start_date, dtype: date, required: false, default: null}\n"
        "  - {key: headcount, dtype: int, default: 1}\n"
        "parameters:\n  - {key: pool_amount, dtype: decimal, value: '2500000'}\n"
        "steps:\n  - order: 10\n    name: mult\n"
        "    expr: 'if(score >= 0.8) then 1.2 else 0.9'\n    condition: ''\n    default: 0\n"
        "    notes: ''\npayout: mult\n"
    )
    from_json, from_yaml = load_plan(json_path), load_plan(yaml_path)
    assert from_json == from_yaml
    assert from_json.steps[0].condition is None
    assert from_json.steps[0].default == "0"
    assert from_json.inputs[2].default == Decimal("1")


def test_numbers_never_pass_through_float(tmp_path):
    path = tmp_path / "plan.yml"
    path.write_text(
        "name: p\neffective_from: 2025-01-01\ncurrency: USD\n"
        "parameters: [{key: rate, dtype: decimal, value: 0.1000000001}]\n"
        "steps: [{order: 1, name: s, expr: rate, default: 0.30000000000}]\npayout: s\n"
    )
    loaded = load_plan(path)
    assert loaded.parameters[0].value == Decimal("0.1000000001")
    json_path = tmp_path / "plan.json"
    json_path.write_text(
        '{"name": "p", "effective_from": "2025-01-01", "currency": "USD", '
        '"parameters": [{"key": "rate", "dtype": "decimal", '
        '"value": 12345678901234567.1234567891}],'
        ' "steps": [{"order": 1, "name": "s", "expr": "rate"}], "payout": "s"}'
    )
    assert load_plan(json_path).parameters[0].value == Decimal("12345678901234567.1234567891")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"currency": "usd"}, "currency:"),
        ({"steps": []}, "steps:"),
        ({"steps": [{"order": 1, "name": "s"}]}, "steps[0].expr: Field required"),
        ({"inputs": [{"key": "a", "dtype": "money"}]}, "inputs[0].dtype:"),
        (
            {"parameters": [{"key": "r", "dtype": "decimal", "value": "abc"}]},
            "parameters[0]: Value error, expected a decimal number",
        ),
        (
            {"parameters": [{"key": "r", "dtype": "int", "value": "1.5"}]},
            "parameters[0]: Value error, expected a whole number",
        ),
        (
            {"parameters": [{"key": "r", "dtype": "decimal", "value": "0.00000000001"}]},
            "more than 10 decimal places",
        ),
        (
            {"inputs": [{"key": "d", "dtype": "date", "default": "31/01/2025"}]},
            "inputs[0]: Value error, expected an ISO date",
        ),
        ({"effective_to": "2024-12-31"}, "effective_to is before effective_from"),
        ({"extra_field": 1}, "extra_field: Extra inputs are not permitted"),
    ],
)
def test_invalid_documents_name_the_field(change, fragment):
    with pytest.raises(PlanLoadError) as info:
        validate_document({**PLAN, **change}, "plan.json")
    assert any(fragment in problem for problem in info.value.problems), info.value.problems
    assert str(info.value).startswith("plan.json: invalid plan document")


def test_unreadable_files(tmp_path):
    bad = tmp_path / "plan.json"
    bad.write_text("{not json")
    with pytest.raises(PlanLoadError, match="not valid JSON"):
        load_plan(bad)
    other = tmp_path / "plan.txt"
    other.write_text("{}")
    with pytest.raises(PlanLoadError, match=r"\.json, \.yaml or \.yml"):
        load_plan(other)


def test_trailing_zeros_beyond_ten_places_are_fine_but_digits_are_not():
    ok = validate_document(
        {**PLAN, "parameters": [{"key": "r", "dtype": "decimal", "value": "0.12345678900000"}]}
    )
    assert ok.parameters[0].value == Decimal("0.123456789")
    with pytest.raises(PlanLoadError, match="more than 10 decimal places"):
        validate_document(
            {**PLAN, "parameters": [{"key": "r", "dtype": "decimal", "value": "0.12345678901"}]}
        )
    with pytest.raises(PlanLoadError, match="out of range"):
        validate_document(
            {**PLAN, "parameters": [{"key": "r", "dtype": "decimal", "value": "1" + "0" * 28}]}
        )


def test_yaml_special_floats_are_rejected_with_a_message(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(
        "name: p\neffective_from: 2025-01-01\ncurrency: USD\n"
        "parameters: [{key: rate, dtype: decimal, value: .inf}]\n"
        "steps: [{order: 1, name: s, expr: rate}]\npayout: s\n"
    )
    with pytest.raises(PlanLoadError, match=r"parameters\[0\].*expected a decimal number"):
        load_plan(path)


def test_load_errors_name_each_field_by_its_path_in_the_document():
    """Top-level fields by name, nested ones as `steps[0].expr`, and the document itself as
    `document`; the error text lists one problem per line."""
    steps_without_expr = {**PLAN, "steps": [{"order": 1, "name": "s"}], "currency": "usd"}
    with pytest.raises(PlanLoadError) as info:
        validate_document(steps_without_expr, "plan.json")
    assert [problem.split(":")[0] for problem in info.value.problems] == [
        "currency",
        "steps[0].expr",
    ]
    assert str(info.value) == (
        "plan.json: invalid plan document:\n"
        f"  - {info.value.problems[0]}\n"
        "  - steps[0].expr: Field required"
    )
    with pytest.raises(PlanLoadError) as not_a_mapping:
        validate_document(["a list"], "plan.yaml")
    (problem,) = not_a_mapping.value.problems
    assert problem.startswith("document: ")


def test_yaml_numbers_with_digit_group_underscores_are_exact(tmp_path):
    """YAML 1.1 allows '_' anywhere among a float's digits (1_000.5, even 1__000.000_5):
    all of them are dropped, and the number is read exactly."""
    path = tmp_path / "plan.yaml"
    path.write_text(
        "name: p\neffective_from: 2025-01-01\ncurrency: USD\n"
        "parameters: [{key: a, dtype: decimal, value: 1_000.000_5},"
        " {key: b, dtype: decimal, value: 1__000.5}]\n"
        "steps: [{order: 1, name: s, expr: a + b}]\npayout: s\n"
    )
    values = [parameter.value for parameter in load_plan(path).parameters]
    assert values == [Decimal("1000.0005"), Decimal("1000.5")]


def test_plan_invalid_lists_every_problem_one_per_line_and_step_lookup_names_the_step():
    from engine.plan import compile_plan
    from tests.engine.plans import document, plan

    with pytest.raises(PlanInvalid) as info:
        compile_plan(document({"a": "x + 1", "b": "a +"}))
    assert str(info.value) == (
        "plan has 2 problem(s):\n"
        "  - step 'b', expr, line 1, column 4: unexpected end of expression\n"
        "a +\n"
        "   ^\n"
        "  - step 'a', expr, line 1, column 1: unknown name 'x'"
    )
    with pytest.raises(KeyError, match="'nope'"):
        plan({"a": "1"}).step("nope")


def test_plan_file_errors_name_the_file(tmp_path):
    other = tmp_path / "plan.txt"
    other.write_text("{}")
    with pytest.raises(PlanLoadError) as wrong_suffix:
        load_plan(other)
    assert str(wrong_suffix.value) == (
        f"{other}: invalid plan document:\n  - file must end in .json, .yaml or .yml"
    )
    bad_json = tmp_path / "plan.json"
    bad_json.write_text("{not json")
    with pytest.raises(PlanLoadError) as not_json:
        load_plan(bad_json)
    assert str(not_json.value).startswith(
        f"{bad_json}: invalid plan document:\n  - not valid JSON: "
    )
    invalid = tmp_path / "plan.yaml"
    invalid.write_text("name: p\n")
    with pytest.raises(PlanLoadError) as not_a_plan:
        load_plan(invalid)
    assert str(not_a_plan.value).startswith(
        f"{invalid}: invalid plan document:\n  - effective_from: Field required"
    )


@pytest.mark.parametrize("raw", [True, False, None])
def test_a_boolean_or_missing_value_is_not_a_decimal(raw):
    """YAML reads `yes`/`true` as a boolean: a decimal parameter must not take it as 1."""
    from engine.plan import coerce_value

    with pytest.raises(ValueError, match="expected a decimal number"):
        coerce_value("decimal", raw)


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-inf"])
def test_a_non_finite_value_is_not_a_decimal(raw):
    from engine.plan import coerce_value

    with pytest.raises(ValueError, match=f"expected a finite decimal number, got '{raw}'"):
        coerce_value("decimal", raw)


def test_a_float_value_means_the_number_as_written():
    """A float (a JSON body parsed without Decimal) is taken by its shortest repr: 0.1 is
    0.1, not the binary 0.1000000000000000055511151231257827..."""
    from engine.plan import coerce_value

    assert coerce_value("decimal", 0.1) == Decimal("0.1")
    assert coerce_value("int", 3.0) == Decimal(3)


def test_text_values_are_kept_as_written_and_only_text_is_text():
    from engine.plan import coerce_value

    assert coerce_value("text", " analyst ") == " analyst "
    with pytest.raises(ValueError, match="expected text, got 5"):
        coerce_value("text", 5)
