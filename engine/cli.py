"""The `paysheet` command line for plans and data files (the server adds its own commands).

Exit codes: 0 success; 1 the plan (or the request) is invalid; 2 the input data is invalid;
3 the evaluation failed (a value out of range).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from engine.backends import reference
from engine.backends.base import EvalResult, ValueOverflow
from engine.data import DataError, load_inputs
from engine.hashing import results_csv
from engine.plan import CompiledPlan, PlanInvalid, PlanLoadError, compile_plan, load_plan

app = typer.Typer(
    name="paysheet",
    help="Paysheet: check bonus plans and evaluate them over employee data.",
    no_args_is_help=True,
    add_completion=False,
)

EXIT_PLAN, EXIT_DATA, EXIT_EVALUATION = 1, 2, 3


class Engine(StrEnum):
    polars = "polars"
    reference = "reference"


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _compiled(plan_path: Path) -> CompiledPlan:
    """Load and check a plan, or exit 1 listing every problem."""
    try:
        return compile_plan(load_plan(plan_path))
    except PlanLoadError as error:
        raise _fail(str(error), EXIT_PLAN) from None
    except PlanInvalid as error:
        lines = [f"{plan_path}: plan has {len(error.problems)} problem(s):"]
        lines += [f"  - {problem}" for problem in error.problems]
        raise _fail("\n".join(lines), EXIT_PLAN) from None
    except OSError as error:
        raise _fail(f"{plan_path}: cannot read plan: {error.strerror}", EXIT_PLAN) from None


def _inputs(plan: CompiledPlan, data: Path, funds: Path | None):
    try:
        return load_inputs(plan, data, funds)
    except DataError as error:
        raise _fail(str(error), EXIT_DATA) from None


def _evaluate(plan: CompiledPlan, frame: Any, engine: Engine) -> EvalResult:
    if engine == Engine.polars:
        from engine.backends import polars as backend
    else:
        backend = reference  # type: ignore[assignment]
    try:
        return backend.evaluate(plan, frame)
    except ValueOverflow as error:
        raise _fail(str(error), EXIT_EVALUATION) from None


def write_atomically(path: Path, payload: bytes) -> None:
    """Write via a temporary file in the same directory and rename it into place, so
    `path` is either its old content or the complete new content, never half written."""
    directory = path.resolve().parent
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@app.command()
def check(plan: Path = typer.Argument(..., help="Plan file (.json, .yaml, .yml)")) -> None:
    """Validate a plan: exit 0 with a summary, or exit 1 listing every problem."""
    compiled = _compiled(plan)
    document = compiled.document
    typer.echo(
        f"{plan}: OK: '{document.name}' v{document.version}, {len(compiled.steps)} steps, "
        f"{len(document.inputs)} inputs, {len(document.parameters)} parameters, "
        f"payout '{compiled.payout}', plan hash {compiled.plan_hash[:12]}"
    )


@app.command("eval")
def eval_(
    plan: Path = typer.Argument(..., help="Plan file"),
    data: Path = typer.Argument(..., help="Employees CSV (one row per employee)"),
    funds: Path | None = typer.Option(None, "--funds", help="Funds CSV keyed by fund_ref"),
    engine: Engine = typer.Option(Engine.polars, "--engine", help="Evaluation backend"),
    out: Path | None = typer.Option(None, "-o", "--out", help="Write the CSV here"),
) -> None:
    """Evaluate a plan and print (or write) the results CSV."""
    compiled = _compiled(plan)
    frame = _inputs(compiled, data, funds)
    payload = results_csv(compiled, _evaluate(compiled, frame, engine))
    if out is None:
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
    else:
        write_atomically(out, payload)


@app.command()
def explain(
    plan: Path = typer.Argument(..., help="Plan file"),
    data: Path = typer.Argument(..., help="Employees CSV"),
    employee: str = typer.Option(..., "--employee", help="employee_ref to explain"),
    funds: Path | None = typer.Option(None, "--funds", help="Funds CSV keyed by fund_ref"),
    as_json: bool = typer.Option(False, "--json", help="Print the tape as JSON"),
) -> None:
    """Show one employee's calculation tape: every step, its inputs and its result."""
    compiled = _compiled(plan)
    frame = _inputs(compiled, data, funds)
    try:
        tape = reference.explain(compiled, frame, employee).to_dict()
    except KeyError:
        raise _fail(f"employee '{employee}' is not in {data}", EXIT_PLAN) from None
    except ValueOverflow as error:
        raise _fail(str(error), EXIT_EVALUATION) from None
    if as_json:
        typer.echo(json.dumps(tape, indent=2, ensure_ascii=False))
    else:
        typer.echo(render_tape(tape))


def _cell(value: Any) -> str:
    return (
        "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    )


def render_tape(tape: dict[str, Any]) -> str:
    """The tape as a readable text table, one block per step in display order."""
    lines = [
        f"employee {tape['employee_ref']} - plan '{tape['plan_name']}' "
        f"(hash {tape['plan_hash'][:12]})",
        f"payout ({tape['payout_step']}): {_cell(tape['payout'])}",
        "",
    ]
    width = max((len(step["step"]) for step in tape["steps"]), default=4)
    for step in tape["steps"]:
        lines.append(f"{step['step']:<{width}} = {_cell(step['result'])}")
        lines.append(f"{'':<{width}}   expr: {step['expr']}")
        if step["condition"] is not None:
            guard = _cell(step["condition_value"])
            lines.append(f"{'':<{width}}   when: {step['condition']}  -> {guard}")
        for name, value in step["bindings"].items():
            lines.append(f"{'':<{width}}   {name} = {_cell(value)}")
        for diagnostic in step["diagnostics"]:
            lines.append(f"{'':<{width}}   ! {diagnostic['code']}: {diagnostic['message']}")
    return "\n".join(lines)


if __name__ == "__main__":
    app()
