"""The paysheet CLI: check, eval (stdout, atomic -o, bad data), explain (table and JSON)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from samples.generate import write

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples/plans/fund_bonus.json"
runner = CliRunner()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    return write(60, 4, seed=11, out=tmp_path_factory.mktemp("data"))


def test_check_passes_the_sample_plan() -> None:
    result = runner.invoke(app, ["check", str(SAMPLE)])
    assert result.exit_code == 0
    assert "OK" in result.output and "17 steps" in result.output


def test_check_lists_every_problem_with_step_and_position(tmp_path: Path) -> None:
    plan = json.loads(SAMPLE.read_text())
    plan["steps"][1]["expr"] = "round2(base_salary * targt_pct)"
    plan["steps"][2]["expr"] = "level + 1"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(plan))
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 1
    assert "2 problem(s)" in result.output
    assert "step 'target_bonus', expr, line 1, column " in result.output
    assert "did you mean 'target_pct'" in result.output
    assert "step 'perf_multiplier'" in result.output


def test_eval_prints_csv_and_writes_out_atomically(data, tmp_path: Path) -> None:
    employees, funds = data
    shown = runner.invoke(app, ["eval", str(SAMPLE), str(employees), "--funds", str(funds)])
    assert shown.exit_code == 0
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("employee_ref,target_pct,target_bonus,")
    assert len(lines) == 61
    out = tmp_path / "out.csv"
    args = ["eval", str(SAMPLE), str(employees), "--funds", str(funds), "-o", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    assert out.read_text() == shown.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_eval_bad_data_exits_2_and_leaves_out_untouched(data, tmp_path: Path) -> None:
    employees, funds = data
    broken = tmp_path / "employees.csv"
    rows = employees.read_text().splitlines()
    cells = rows[3].split(",")
    cells[4] = "12x5"  # base_salary of the employee on file line 4
    rows[3] = ",".join(cells)
    broken.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out.csv"
    out.write_text("previous")
    args = ["eval", str(SAMPLE), str(broken), "--funds", str(funds), "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "line 4, column 'base_salary': not a decimal number (value '12x5')" in result.output
    assert out.read_text() == "previous"


def test_eval_missing_column_names_it(data, tmp_path: Path) -> None:
    employees, funds = data
    text = employees.read_text().replace("base_salary", "salary", 1)
    renamed = tmp_path / "e.csv"
    renamed.write_text(text)
    result = runner.invoke(app, ["eval", str(SAMPLE), str(renamed), "--funds", str(funds)])
    assert result.exit_code == 2
    assert "column 'base_salary': required column is missing" in result.output


def test_explain_table_and_json(data) -> None:
    employees, funds = data
    base = ["explain", str(SAMPLE), str(employees), "--funds", str(funds), "--employee", "E0000007"]
    table = runner.invoke(app, base)
    assert table.exit_code == 0
    assert "employee E0000007" in table.output and "bonus" in table.output
    as_json = runner.invoke(app, [*base, "--json"])
    tape = json.loads(as_json.output)
    assert tape["employee_ref"] == "E0000007"
    assert [s["step"] for s in tape["steps"]][:2] == ["target_pct", "target_bonus"]
    missing = runner.invoke(app, [*base[:-1], "E9999999"])
    assert missing.exit_code == 1


def test_module_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "check", str(SAMPLE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
