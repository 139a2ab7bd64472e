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


def verify_workbook(
    path: Path = typer.Argument(..., help="An audit workbook (.xlsx) written by Paysheet"),
) -> None:
    """Recalculate an audit workbook with `formulas` and check every row to the cent
    against the engine's stored values (and every formula against the plan). Exit 1 when
    anything differs, listing what."""
    from engine.backends.excel_audit import verify_workbook as verify

    try:
        report = verify(path)
    except (OSError, ValueError, KeyError) as error:
        typer.echo(f"{path}: cannot verify: {error}", err=True)
        raise typer.Exit(2) from None
    if report.ok:
        typer.echo(f"{path}: {report.rows} rows x {report.steps} steps agree with the engine "
                   "to the cent; every formula is the plan's")
        return
    typer.echo(f"{path}: {len(report.problems)} problem(s):", err=True)
    for problem in report.problems[:50]:
        typer.echo(f"  - {problem}", err=True)
    if len(report.problems) > 50:
        typer.echo(f"  … and {len(report.problems) - 50} more", err=True)
    raise typer.Exit(1)
