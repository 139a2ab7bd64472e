"""The 500-employee run of the sample plan behind the big audit-workbook tests, three changes
to its workbook, and what `paysheet verify-workbook` must say about them: the same check on
the workbook as written (tests/engine/test_excel_audit.py) and as LibreOffice re-saves it
(tests/workbooks/test_libreoffice_roundtrip.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
from openpyxl import load_workbook
from typer.testing import CliRunner

from engine.backends import reference
from engine.backends.base import EvalResult
from engine.data import load_inputs
from engine.plan import CompiledPlan, compile_plan, load_plan
from samples.generate import write
from server.cli import app as cli

ROOT = Path(__file__).resolve().parents[2]


def evaluate_sample(folder: Path) -> tuple[CompiledPlan, pl.DataFrame, EvalResult]:
    """(plan, inputs, reference result) of 500 generated employees in 6 funds (seed 2025),
    their CSV files written under `folder`."""
    compiled = compile_plan(load_plan(ROOT / "samples/plans/fund_bonus.json"))
    employees, funds = write(500, 6, 2025, folder / "data")
    data = load_inputs(compiled, employees, funds)
    return compiled, data, reference.evaluate(compiled, data)


@dataclass(frozen=True)
class Tampered:
    path: Path
    letter: dict[str, str]  # Calc column header → column letter
    outside: int  # the Calc row whose base salary was doubled
    refs: dict[int, str]  # Calc row → employee ref, for the rows changed


def tamper(source: Path, target: Path) -> Tampered:
    """Save to `target` a copy of `source` with row 301's engine bonus 0.02 higher, the base
    salary doubled for an employee outside the allocation (so only their own row moves) and
    row 123's `cash` formula overwritten by 0."""
    workbook = load_workbook(source)
    calc = workbook["Calc"]
    letter = {cell.value: cell.column_letter for cell in calc[1]}
    outside = next(row for row in range(350, 502)
                   if calc[f"{letter['eligible (engine)']}{row}"].value is False)
    calc[f"{letter['bonus (engine)']}301"] = calc[f"{letter['bonus (engine)']}301"].value + 0.02
    calc[f"{letter['base_salary']}{outside}"] = calc[f"{letter['base_salary']}{outside}"].value * 2
    calc[f"{letter['cash']}123"] = 0
    workbook.save(target)
    refs = {row: calc[f"A{row}"].value for row in (301, outside)}
    return Tampered(target, letter, outside, refs)


def assert_tampering_named(path: Path, tampered: Tampered) -> None:
    """`verify-workbook path` fails and names each changed cell, its employee and step."""
    result = CliRunner().invoke(cli, ["verify-workbook", str(path)])
    assert result.exit_code == 1, result.output
    letter, outside, refs = tampered.letter, tampered.outside, tampered.refs
    problems = [line[4:] for line in result.output.splitlines() if line.startswith("  - ")]
    assert problems[0] == f"Calc!{letter['cash']}123: formula of 'cash' was changed"
    assert problems[1].startswith(
        f"Calc!{letter['bonus']}301 (employee {refs[301]}, step 'bonus'): workbook ")
    assert problems[1].endswith(f"(Calc!{letter['bonus (engine)']}301)")
    assert problems[2].startswith(f"Calc!{letter['target_bonus']}{outside} "
                                  f"(employee {refs[outside]}, step 'target_bonus')")
    assert all(f"{outside} (employee" in problem for problem in problems[2:])
