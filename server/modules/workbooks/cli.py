"""`paysheet template OUT.xlsx [--plan PLAN.json]`: write the plan workbook template."""

from __future__ import annotations

from pathlib import Path

import typer


def template(
    out: Path = typer.Argument(..., help="Where to write the .xlsx"),
    plan: Path | None = typer.Option(None, help="Pre-fill from this plan (.json/.yaml)"),
) -> None:
    """Write the plan workbook template, optionally filled from a plan document."""
    from engine.check import check_plan
    from engine.cli import write_atomically
    from engine.plan import PlanLoadError, load_plan
    from server.modules.workbooks.template import build_workbook, workbook_bytes

    document = None
    diagnostics = None
    if plan is not None:
        try:
            loaded = load_plan(plan)
        except PlanLoadError as error:
            typer.echo(str(error), err=True)
            raise typer.Exit(1) from None
        except OSError as error:
            typer.echo(f"{plan}: cannot read plan: {error.strerror}", err=True)
            raise typer.Exit(1) from None
        document = loaded.model_dump(mode="json")
        _, problems = check_plan(loaded)
        diagnostics = [
            {"step": p.step, "field": p.field, "line": p.line, "column": p.column,
             "code": p.code, "message": p.message}
            for p in problems
        ]
    write_atomically(out, workbook_bytes(build_workbook(document, None, diagnostics)))
    typer.echo(f"wrote {out}")
