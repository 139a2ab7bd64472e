"""Canonical JSON, plan/snapshot hashes and the canonical results CSV."""

import hashlib
import json
from datetime import date
from decimal import Decimal

import polars as pl

from engine.backends.base import DIAGNOSTIC_DTYPE, EvalResult
from engine.backends.reference import evaluate
from engine.hashing import (
    canonical_json,
    plan_hash,
    results_csv,
    results_hash,
    snapshot_hash,
)
from engine.plan import validate_document
from tests.engine.plans import frame, plan

BASE = {
    "name": "Plan",
    "version": 1,
    "effective_from": "2025-01-01",
    "currency": "USD",
    "inputs": [{"key": "salary", "dtype": "decimal"}],
    "parameters": [{"key": "rate", "dtype": "decimal", "value": "0.1"}],
    "steps": [
        {"order": 10, "name": "target", "expr": "salary * rate"},
        {"order": 20, "name": "bonus", "expr": "round2(target)"},
    ],
    "payout": "bonus",
}


def doc(**changes):
    return validate_document({**json.loads(json.dumps(BASE)), **changes})


def test_canonical_json_sorted_compact_r10_decimals():
    data = {"b": Decimal("1.5"), "a": [date(2025, 1, 2), "é"], "c": Decimal("-0")}
    assert canonical_json(data) == (
        '{"a":["2025-01-02","é"],"b":"1.5000000000","c":"0.0000000000"}'.encode()
    )


def test_plan_hash_ignores_the_version_and_the_step_list_order():
    original = plan_hash(doc())
    assert plan_hash(doc(version=7)) == original
    reversed_steps = list(reversed(BASE["steps"]))
    assert plan_hash(doc(steps=reversed_steps)) == original
    same_value = [{"key": "rate", "dtype": "decimal", "value": "0.1000"}]
    assert plan_hash(doc(parameters=same_value)) == original


def test_plan_hash_changes_with_any_content_change():
    original = plan_hash(doc())
    changed = [
        doc(name="Plan 2"),
        doc(parameters=[{"key": "rate", "dtype": "decimal", "value": "0.11"}]),
        doc(steps=[BASE["steps"][0], {**BASE["steps"][1], "expr": "round2(target) + 0"}]),
        doc(effective_to="2025-12-31"),
    ]
    hashes = {plan_hash(d) for d in changed}
    assert original not in hashes and len(hashes) == len(changed)


def test_snapshot_hash_covers_plan_version_mapping_and_data():
    mapping = {"salary": "Base Salary"}
    original = snapshot_hash(doc(), mapping, "ab" * 32)
    assert snapshot_hash(doc(), dict(mapping), "ab" * 32) == original
    assert len(original) == 64
    others = {
        snapshot_hash(doc(version=2), mapping, "ab" * 32),
        snapshot_hash(doc(), {"salary": "Salary"}, "ab" * 32),
        snapshot_hash(doc(), mapping, "cd" * 32),
    }
    assert original not in others and len(others) == 3


def test_results_csv_format():
    compiled = plan(
        [
            {"order": 1, "name": "amount", "expr": "x / y"},
            {"order": 2, "name": "high", "expr": "amount > 1"},
            {"order": 3, "name": "label", "expr": "name"},
            {"order": 4, "name": "when", "expr": "start"},
        ],
        {"x": "decimal", "y": "decimal", "name": "text", "start": "date"},
        payout="amount",
    )
    data = frame(
        {"x": "decimal", "y": "decimal", "name": "text", "start": "date"},
        [
            {"employee_ref": "E2", "x": 3, "y": 2, "name": 'a, "b"', "start": "2025-01-31"},
            {"employee_ref": "E1", "x": -1, "y": 0, "name": "plain", "start": None},
        ],
    )
    csv = results_csv(compiled, evaluate(compiled, data)).decode()
    diagnostics = (
        '"[{""code"":""division_by_zero"",""message"":""division by zero"",""step"":""amount""},'
        '{""code"":""null_payout"",""message"":""payout \'amount\' is null; first null step '
        '\'amount\' (division_by_zero)"",""step"":""amount""}]"'
    )
    assert csv == (
        "employee_ref,amount,high,label,when,diagnostics\n"
        f"E1,,,plain,,{diagnostics}\n"
        'E2,1.5000000000,true,"a, ""b""",2025-01-31,\n'
    )


def test_results_csv_false_and_null_booleans_differ():
    result = EvalResult(
        pl.DataFrame(
            {
                "employee_ref": ["A", "B", "C"],
                "flag": [True, False, None],
                "diagnostics": pl.Series([[], [], []], dtype=DIAGNOSTIC_DTYPE),
            }
        )
    )
    compiled = plan({"flag": "true", "p": "1"}, payout="p")
    compiled = type(compiled)(**{**compiled.__dict__, "display_order": ("flag",)})
    assert results_csv(compiled, result).decode().splitlines() == [
        "employee_ref,flag,diagnostics",
        "A,true,",
        "B,false,",
        "C,,",
    ]


def test_results_hash_is_sha256_of_the_csv_and_reproducible():
    compiled = plan({"p": "x * 1.1"}, {"x": "decimal"})
    data = frame({"x": "decimal"}, [{"x": i} for i in range(5)])
    first = evaluate(compiled, data)
    again = evaluate(compiled, data)
    expected = hashlib.sha256(results_csv(compiled, first)).hexdigest()
    assert results_hash(compiled, first) == expected == results_hash(compiled, again)
    shuffled = evaluate(compiled, data.reverse())
    assert results_hash(compiled, shuffled) == expected


def test_snapshot_hash_is_sha256_of_the_canonical_json_of_its_five_parts():
    """ENGINE.md §9, as a stable format: runs and approvals keep this hash, so the same
    snapshot must hash the same after any engine change (the JSON keeps these five keys)."""
    from engine.catalog import CATALOG_VERSION
    from engine.hashing import canonical_plan

    mapping = {"salary": "Base Salary"}
    data_sha256 = "ab" * 32
    parts = {
        "catalog_version": CATALOG_VERSION,
        "data_sha256": data_sha256,
        "mapping": mapping,
        "plan": canonical_plan(doc()),
        "semantics": "R10",
    }
    expected = hashlib.sha256(canonical_json(parts)).hexdigest()
    assert snapshot_hash(doc(), mapping, data_sha256) == expected


def test_results_csv_writes_ten_decimal_places_whatever_the_column_scale():
    """The canonical CSV does not depend on the decimal scale a backend happens to leave
    in its result frame."""
    result = EvalResult(
        pl.DataFrame(
            {
                "employee_ref": ["A", "B"],
                "p": pl.Series([Decimal("1.5"), Decimal("-2")], dtype=pl.Decimal(38, 2)),
                "diagnostics": pl.Series([[], []], dtype=DIAGNOSTIC_DTYPE),
            }
        )
    )
    compiled = plan({"p": "1"})
    assert results_csv(compiled, result).decode().splitlines() == [
        "employee_ref,p,diagnostics",
        "A,1.5000000000,",
        "B,-2.0000000000,",
    ]
