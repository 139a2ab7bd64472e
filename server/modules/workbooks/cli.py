"""`paysheet template OUT.xlsx [--plan PLAN.json]`: write the plan workbook template;
`paysheet verify-workbook FILE`: check an audit workbook; `paysheet excel push|pull`: sync the
workbook open in Excel with the server (the desktop extra, xlwings)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    from engine.backends.excel_verify import verify_workbook as verify

    try:
        report = verify(path)
    except (OSError, ValueError, KeyError) as error:
        typer.echo(f"{path}: cannot verify: {error}", err=True)
        raise typer.Exit(2) from None
    if report.ok:
        typer.echo(f"{path}: {report.rows} rows x {report.steps} steps agree with the engine "
                   "to the cent; every formula is the plan's (formula version "
                   f"{report.formula_version})")
        return
    typer.echo(f"{path}: {len(report.problems)} problem(s):", err=True)
    for problem in report.problems[:50]:
        typer.echo(f"  - {problem}", err=True)
    if len(report.problems) > 50:
        typer.echo(f"  … and {len(report.problems) - 50} more", err=True)
    raise typer.Exit(1)


excel = typer.Typer(help="Sync the plan workbook open in Excel with the server (needs the "
                         "desktop extra: pip install 'paysheet[desktop]').",
                    no_args_is_help=True)

SERVER = typer.Option("http://localhost:8000", envvar="PAYSHEET_SERVER",
                      help="The Paysheet server")
EMAIL = typer.Option(None, envvar="PAYSHEET_EMAIL", help="Sign in as (with --password)")
PASSWORD = typer.Option(None, envvar="PAYSHEET_PASSWORD", help="Password for --email")
TOKEN = typer.Option(None, envvar="PAYSHEET_TOKEN", help="A bearer token instead of --email")
BOOK = typer.Option(None, help="The open workbook's name (default: the active workbook)")


@excel.command("push")
def excel_push(server: str = SERVER, email: str | None = EMAIL,
               password: str | None = PASSWORD, token: str | None = TOKEN,
               book: str | None = BOOK) -> None:
    """Send the workbook's plan (PUT …/document, creating the draft on the first push) and
    write each row's Status and Message back into the workbook."""
    from server.modules.workbooks.desktop import push

    _sync(push, server, email, password, token, book)


@excel.command("pull")
def excel_pull(server: str = SERVER, email: str | None = EMAIL,
               password: str | None = PASSWORD, token: str | None = TOKEN,
               book: str | None = BOOK) -> None:
    """Write the stored plan's status, version, hash and diagnostics into the workbook."""
    from server.modules.workbooks.desktop import pull

    _sync(pull, server, email, password, token, book)


def _sync(action: Callable[[Any, Any], Any], server: str, email: str | None,
          password: str | None, token: str | None, book: str | None) -> None:
    import httpx

    from server.modules.workbooks.desktop import DesktopError, PaysheetApi, active_book
    from server.modules.workbooks.reader import WorkbookUnreadable

    if token is None and email is None:
        typer.echo("give --token (or PAYSHEET_TOKEN), or --email and --password", err=True)
        raise typer.Exit(2)
    try:
        workbook = active_book(book)
        with httpx.Client(base_url=server, timeout=60) as http:
            api = PaysheetApi(http, token)
            if token is None:
                api.sign_in(email or "", password or typer.prompt("Password", hide_input=True))
            result = action(workbook, api)
    except (DesktopError, WorkbookUnreadable, httpx.HTTPError) as error:
        typer.echo(f"excel: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"plan {result.plan_id}: {result.status or 'not sent'}, "
               f"{'valid' if result.valid else 'not valid'}")
    for problem in result.problems:
        typer.echo(f"  - {problem.get('cell') or problem.get('sheet')}: {problem['message']}")
    if result.problems:
        raise typer.Exit(1)
