"""The files of an export bundle, built from plain run data (no database here).

Results come in the database's shape, one row per employee: `{"employee_ref", "values":
{step: R10 string | bool | text | ISO date | None}, "diagnostics": [...]}` (comp.run_results).
`results.csv` uses the canonical results CSV layout (docs/engine.md §10): employee_ref, steps
in display order, diagnostics; rows by employee_ref. When no cell had to be neutralised it
is byte-identical to the canonical CSV, so its SHA-256 equals the run's results hash; the
manifest's `results_csv_matches_results_hash` records whether that holds for this export.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
from openpyxl import Workbook
from openpyxl.styles import Font

from engine.plan import CompiledPlan
from server.modules.reports.bundle import canonical_json, safe_member_name, sha256
from server.modules.reports.files import csv_bytes, put_row, save_workbook
from server.modules.reports.formatting import typed_value
from server.modules.reports.statement import RunInfo

ResultRow = Mapping[str, Any]


def rows_from_frame(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Engine result frame (EvalResult layout) -> rows in the database's shape."""
    steps = [c for c in frame.columns if c not in ("employee_ref", "diagnostics")]
    rows = []
    for record in frame.iter_rows(named=True):
        values = {}
        for name in steps:
            value = record[name]
            if isinstance(value, Decimal):
                value = format(value, "f")
            elif isinstance(value, date):
                value = value.isoformat()
            values[name] = value
        rows.append({"employee_ref": record["employee_ref"], "values": values,
                     "diagnostics": record["diagnostics"] or []})
    return rows


def _diagnostics_text(diagnostics: Sequence[Mapping[str, Any]]) -> str | None:
    if not diagnostics:
        return None
    return "[" + ",".join(canonical_json(dict(d)).decode() for d in diagnostics) + "]"


def typed_rows(plan: CompiledPlan, rows: Iterable[ResultRow]) -> list[list[Any]]:
    """Rows sorted by employee_ref: [ref, typed step values in display order, diagnostics]."""
    kinds = {step.name: step.type for step in plan.steps}
    table = []
    for row in sorted(rows, key=lambda r: str(r["employee_ref"])):
        values = row["values"]
        cells: list[Any] = [str(row["employee_ref"])]
        for name in plan.display_order:
            try:
                cells.append(typed_value(kinds[name], values.get(name)))
            except ValueError as error:
                raise ValueError(f"employee '{row['employee_ref']}', step '{name}': {error}"
                                 ) from None
        cells.append(_diagnostics_text(row.get("diagnostics") or []))
        table.append(cells)
    return table


def results_files(plan: CompiledPlan, rows: Iterable[ResultRow]) -> tuple[bytes, bytes]:
    """(results.csv, results.xlsx) with the same rows and columns."""
    header = ["employee_ref", *plan.display_order, "diagnostics"]
    table = typed_rows(plan, rows)
    csv_data = csv_bytes(header, table)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Results"
    put_row(sheet, 1, header)
    for column in range(1, len(header) + 1):
        sheet.cell(row=1, column=column).font = Font(bold=True)
    for index, cells in enumerate(table, start=2):
        put_row(sheet, index, cells)
    sheet.freeze_panes = "B2"
    return csv_data, save_workbook(workbook)


def export_files(
    plan: CompiledPlan,
    rows: Iterable[ResultRow],
    statements: Mapping[str, bytes],
    audit_events: Sequence[Mapping[str, Any]],
    audit_workbook: bytes | None = None,
) -> dict[str, bytes]:
    """Every file of the bundle by path; `statements` maps employee_ref -> PDF bytes."""
    csv_data, xlsx_data = results_files(plan, rows)
    files = {
        "results.csv": csv_data,
        "results.xlsx": xlsx_data,
        "audit_events.json": json.dumps(list(audit_events), sort_keys=True, indent=1,
                                        ensure_ascii=False).encode("utf-8") + b"\n",
    }
    if audit_workbook is not None:
        files["audit_workbook.xlsx"] = audit_workbook
    for ref, pdf in statements.items():
        name = f"statements/{safe_member_name(ref)}.pdf"
        if name in files:
            raise ValueError(f"two statements would share the file name {name}")
        files[name] = pdf
    return files


def manifest_run(run: RunInfo, plan: CompiledPlan, tenant_id: str, files: Mapping[str, bytes]
                 ) -> dict[str, Any]:
    """The run facts the manifest signs (all JSON strings/bools, nothing clock-dependent)."""
    return {
        "tenant_id": tenant_id,
        "run_id": run.run_id,
        "status": run.status,
        "plan_name": plan.document.name,
        "plan_version": plan.document.version,
        "plan_hash": plan.plan_hash,
        "snapshot_hash": run.snapshot_hash,
        "results_hash": run.results_hash,
        "results_csv_matches_results_hash": sha256(files["results.csv"]) == run.results_hash,
        "approvals": [{"state": a.state, "by": a.by, "at": a.at} for a in run.history],
    }


__all__ = ["export_files", "manifest_run", "results_files", "rows_from_frame", "sha256",
           "typed_rows"]
