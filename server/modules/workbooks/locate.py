"""Where in the workbook a plan diagnostic belongs: sheet, row and column.

The plans API reports {step, field, line, column, code, message}; the workbook needs a cell.
A step's problems go to its Steps row (the column of the field: expression, guard, default,
name); payout and header problems to the Plan sheet; input and parameter problems to the row
of the key they name. The add-in's `addin/src/diagnostics.js` follows the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from server.modules.workbooks.layout import FIRST_ROW, layout

STEP_FIELDS = {"expr": "expr", "condition": "condition", "default": "default", "name": "name",
               "order": "order", "notes": "notes"}
PLAN_FIELDS = {"name", "effective_from", "effective_to", "currency", "payout", "version"}
QUOTED = re.compile(r"'([^']+)'")


Rows = Mapping[str, Sequence[int]]
"""Sheet row of each item of document[part] (an imported workbook); without it the rows are
those `build_workbook` writes: declared order, steps sorted by (order, name)."""


def _rows(document: Mapping[str, Any], part: str, key: str, rows: Rows | None
          ) -> dict[str, int]:
    items = list(document.get(part) or [])
    if rows is not None and part in rows:
        return {str(item.get(key)): row for item, row in zip(items, rows[part], strict=False)}
    if part == "steps":
        items.sort(key=lambda s: (s.get("order") or 0, s.get("name") or ""))
    return {str(item.get(key)): FIRST_ROW + index for index, item in enumerate(items)}


def locate(document: Mapping[str, Any], diagnostic: Mapping[str, Any],
           rows: Rows | None = None) -> dict[str, Any]:
    """The diagnostic with sheet, row, column (letter) and cell (`Steps!C5`) added; the
    expression position moves to expr_line/expr_column."""
    spec = layout()
    step, field = diagnostic.get("step"), diagnostic.get("field")
    steps = _rows(document, "steps", "name", rows)
    sheet, row, column = "Plan", spec.plan_field("message").row, "B"
    if step is not None and step in steps and field != "payout":
        sheet, row = "Steps", steps[step]
        column = spec.tables["Steps"].column(STEP_FIELDS.get(field or "name", "name")).letter
    elif field in ("inputs", "parameters"):
        sheet, row, column = _declaration_cell(document, field, diagnostic, rows,
                                               (sheet, row, column))
    elif field in PLAN_FIELDS:
        row = spec.plan_field(field).row
    return {
        "sheet": sheet, "row": row, "column": column, "cell": f"{sheet}!{column}{row}",
        "code": diagnostic.get("code"), "message": diagnostic.get("message"),
        "step": step, "field": field,
        "expr_line": diagnostic.get("line"), "expr_column": diagnostic.get("column"),
    }


def _declaration_cell(document: Mapping[str, Any], part: str, diagnostic: Mapping[str, Any],
                      rows: Rows | None, fallback: tuple[str, int, str]
                      ) -> tuple[str, int, str]:
    """The row of the input/parameter whose key the message quotes (else the fallback)."""
    sheet = "Inputs" if part == "inputs" else "Parameters"
    keys = _rows(document, part, "key", rows)
    table = layout().tables[sheet]
    for name in QUOTED.findall(str(diagnostic.get("message", ""))):
        if name in keys:
            key = "value" if part == "parameters" and diagnostic.get("code") in (
                "invalid_value", "unknown_parameter") else "key"
            return sheet, keys[name], table.column(key).letter
    return fallback


def locate_all(document: Mapping[str, Any], diagnostics: Sequence[Mapping[str, Any]],
               rows: Rows | None = None) -> list[dict[str, Any]]:
    return [locate(document, diagnostic, rows) for diagnostic in diagnostics]
