"""The plan workbook layout, read from `templates/plan_layout.json`.

One JSON file describes the sheets and columns for everyone: this module (template, import,
export) and the add-in (served at /api/v1/templates/plan-layout.json), so the Python and
JavaScript sides cannot disagree about where a field lives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from openpyxl.utils import get_column_letter

LAYOUT_PATH = Path(__file__).resolve().parents[3] / "templates" / "plan_layout.json"
HEADER_ROW = 1
FIRST_ROW = 2


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    letter: str
    editable: bool
    width: int
    choices: tuple[str, ...]
    text: bool


@dataclass(frozen=True)
class Table:
    """A sheet with a header row and one item per row (Inputs, Parameters, Steps)."""

    sheet: str
    columns: tuple[Column, ...]

    def column(self, key: str) -> Column:
        return next(column for column in self.columns if column.key == key)


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    editable: bool
    about: str
    row: int


@dataclass(frozen=True)
class Layout:
    raw: dict[str, Any]
    max_rows: int
    plan_fields: tuple[Field, ...]
    tables: dict[str, Table]
    tests_fixed: tuple[Column, ...]
    tests_free_columns: int
    tests_about: str
    tests_max_rows: int

    @property
    def last_row(self) -> int:
        return FIRST_ROW + self.max_rows - 1

    def plan_field(self, key: str) -> Field:
        return next(field for field in self.plan_fields if field.key == key)


def _columns(specs: list[dict[str, Any]]) -> tuple[Column, ...]:
    return tuple(
        Column(
            key=spec["key"],
            header=spec["header"],
            letter=get_column_letter(index + 1),
            editable=spec["editable"],
            width=spec.get("width", 12),
            choices=tuple(spec.get("choices", ())),
            text=spec.get("text", False),
        )
        for index, spec in enumerate(specs)
    )


@cache
def layout() -> Layout:
    raw = json.loads(LAYOUT_PATH.read_text(encoding="utf-8"))
    sheets = raw["sheets"]
    fields = tuple(
        Field(spec["key"], spec["label"], spec["editable"], spec["about"], FIRST_ROW + index)
        for index, spec in enumerate(sheets["Plan"]["fields"])
    )
    tables = {
        name: Table(name, _columns(spec["columns"]))
        for name, spec in sheets.items()
        if spec["kind"] == "table"
    }
    tests = sheets["Tests"]
    return Layout(raw, raw["max_rows"], fields, tables, _columns(tests["fixed"]),
                  tests["free_columns"], tests["about"], tests["max_rows"])
