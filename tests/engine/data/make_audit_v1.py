"""How tests/engine/data/audit-v1.xlsx was made: by the audit-workbook generator of commit
5224384^ (formula version 1: snaps as `ROUND(x*100,8)`, written with openpyxl, no `range`
column, no formula version on Meta), which this tree no longer has. It only runs with that
old engine first on the path, from the repository's top:

    mkdir -p /tmp/oldsrc && git archive 5224384^ engine | tar -x -C /tmp/oldsrc
    PYTHONPATH=/tmp/oldsrc:. .venv/bin/python tests/engine/data/make_audit_v1.py \
        tests/engine/data/audit-v1.xlsx

tests/engine/test_excel_audit.py verifies the file with today's verify-workbook.
"""
import sys

from engine.backends import reference
from engine.backends.excel_audit import build_audit_workbook
from tests.engine.plans import frame, plan

INPUTS = {"pool": "decimal", "w": "decimal", "team": "text"}
compiled = plan(
    [
        {"order": 1, "name": "share", "expr": "allocate(pool, w, fund_ref)",
         "condition": "w > 0"},
        {"order": 2, "name": "third", "expr": "pool * w / 3"},
        {"order": 3, "name": "eighth", "expr": "round2(pool / 8)"},
        {"order": 4, "name": "bonus", "expr": "round2(share + third)"},
        {"order": 5, "name": "team_total", "expr": "sum_over(bonus, team)"},
        {"order": 6, "name": "label", "expr": 'if (bonus > 100) then "big" else team'},
    ],
    INPUTS,
    payout="bonus",
)
rows = [
    {"employee_ref": "E1", "fund_ref": "F1", "pool": 1000, "w": 2, "team": "a"},
    {"employee_ref": "E2", "fund_ref": "F1", "pool": 1000, "w": 1, "team": "b"},
    {"employee_ref": "E3", "fund_ref": "F1", "pool": 1000, "w": 0, "team": "a"},
    {"employee_ref": "E4", "fund_ref": "F2", "pool": "0.36", "w": "1.5", "team": "b"},
    {"employee_ref": "E5", "fund_ref": "F2", "pool": "0.36", "w": "2.5", "team": "a"},
    {"employee_ref": "E6", "fund_ref": "F3", "pool": 50, "w": None, "team": "b"},
]
data = frame(INPUTS, rows)
workbook = build_audit_workbook(compiled, data, reference.evaluate(compiled, data),
                                {"run": "formula-version-1 fixture", "made by": "5224384^"})
workbook.save(sys.argv[1])
