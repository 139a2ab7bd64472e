"""The `paysheet` command: the engine's commands (check/eval/explain) plus the server's.

paysheet serve                      embedded PostgreSQL (or DATABASE_URL) + API on :8000
paysheet migrate                    alembic upgrade head (owner role)
paysheet tenant create --name … --admin-email …
paysheet seed-demo                  demo tenant, one user per role, sample plan
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import typer

from server.modules.audit.cli import audit_app
from server.modules.reports.cli import verify_bundle_command
from server.settings import Settings, get_settings

if importlib.util.find_spec("engine.cli") is not None:
    from engine.cli import app
else:
    app = typer.Typer(help="Paysheet: bonus plans as data.", no_args_is_help=True)

tenant_app = typer.Typer(help="Manage tenants.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
slo_app = typer.Typer(help="Service-level objectives.", no_args_is_help=True)
app.add_typer(slo_app, name="slo")


@contextmanager
def _database(settings: Settings) -> Iterator[Settings]:
    """Settings pointing at a migrated database: DATABASE_URL, else the embedded one."""
    from server.db import session as db
    from server.db.bootstrap import run_migrations
    from server.db.embedded import start_embedded
    from server.modules.audit.service import configure_audit_keys
    from server.modules.auth.service import configure_password_hashing
    from server.observability.logging import configure_logging

    configure_logging(settings.log_level, settings.log_json)
    configure_password_hashing(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )
    configure_audit_keys(settings)
    if settings.database_url:
        if settings.migration_database_url:
            run_migrations(settings.migration_database_url)
        db.configure(settings)
        yield settings
        return
    typer.echo(f"Starting embedded PostgreSQL under {settings.data_dir / 'pgdata'} …")
    embedded = start_embedded(settings.data_dir, settings.bootstrap_role_password)
    try:
        settings = settings.model_copy(
            update={
                "database_url": embedded.urls.app,
                "migration_database_url": embedded.urls.migrate,
            }
        )
        db.configure(settings)
        yield settings
    finally:
        db.release_connections()
        embedded.release()


def _print_logins(settings: Settings) -> None:
    from server.seed import seed_demo

    logins = seed_demo(settings.data_dir)
    typer.echo(f"Demo tenant 'Demo Capital' ({logins.tenant_id}); logins (email / password):")
    for email, password in sorted(logins.passwords.items()):
        typer.echo(f"  {email:<32} {password}")


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (env HOST, default 127.0.0.1)"),
    port: int | None = typer.Option(None, help="Port (env PORT, default 8000)"),
    workers: int | None = typer.Option(
        None, min=1, help="API processes (env API_WORKERS; default 1 with the embedded "
        "database, else one per CPU, at most 4)"),
) -> None:
    """Run the API. Without DATABASE_URL: embedded PostgreSQL, migrations, demo data."""
    import uvicorn

    from server.app import create_app
    from server.settings import api_worker_count
    from server.shutdown import exit_on_signals

    exit_on_signals()  # SIGTERM unwinds like Ctrl-C: consumer and embedded PostgreSQL stop
    os.environ.setdefault("GC_FREEZE_AT_START", "1")  # API processes read it (settings.py)
    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    embedded = not settings.database_url
    with _database(settings) as ready:
        if embedded:
            _print_logins(ready)
        count = workers or api_worker_count(ready, embedded)
        typer.echo(f"Paysheet API on http://{host}:{port}  (docs: http://{host}:{port}/docs, "
                   f"{count} process{'es' if count > 1 else ''})")
        from server.worker.consumer import in_process_consumer

        # The queue consumer (embedded database) runs here once, never in each API process.
        grace = ready.shutdown_grace_seconds
        with in_process_consumer(ready, embedded):
            if count == 1:
                uvicorn.run(create_app(ready), host=host, port=port, log_config=None,
                            access_log=False, timeout_graceful_shutdown=grace)
                return
            # Worker processes build the app from the environment: hand them the database,
            # and a shared metrics directory so each answers /metrics for all of them.
            os.environ["DATABASE_URL"] = ready.database_url or ""
            os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                                  tempfile.mkdtemp(prefix="paysheet-api-metrics-"))
            uvicorn.run("server.app:create_app", factory=True, workers=count, host=host,
                        port=port, log_config=None, access_log=False,
                        timeout_graceful_shutdown=grace)


@app.command()
def worker(
    processes: int | None = typer.Option(None, help="Worker processes (env WORKER_PROCESSES)"),
    threads: bool = typer.Option(False, help="Thread workers instead of processes"),
    metrics_port: int | None = typer.Option(None, help="Serve the workers' /metrics here"),
) -> None:
    """Run the job queue consumer that executes runs (RedisHuey with REDIS_URL, else
    PostgresHuey on the database). Start as many as you like, on as many machines."""
    from server.worker.consumer import run_worker

    with _database(get_settings()) as ready:
        run_worker(ready, processes, "thread" if threads else "process", metrics_port)


@app.command()
def migrate() -> None:
    """Upgrade the schema to the latest migration (MIGRATION_DATABASE_URL, owner role)."""
    from server.db.bootstrap import run_migrations

    settings = get_settings()
    url = settings.migration_database_url or settings.database_url
    if url:
        run_migrations(url)
    else:
        with _database(settings):
            pass
    typer.echo("Schema is up to date.")


@tenant_app.command("create")
def tenant_create(
    name: str = typer.Option(..., help="Tenant (company) name"),
    admin_email: str = typer.Option(..., help="Email of the tenant's first admin"),
    admin_name: str | None = typer.Option(None, help="Display name of that admin"),
) -> None:
    """Create a tenant and its first admin; prints the admin's one-time password."""
    from server.errors import ProblemError
    from server.modules.tenants.service import create_tenant

    with _database(get_settings()):
        try:
            created = create_tenant(name, admin_email, admin_name)
        except ProblemError as exc:
            typer.echo(f"error: {exc.detail}", err=True)
            raise typer.Exit(code=1) from exc
    typer.echo(f"Tenant {created.tenant.name} created: {created.tenant.id}")
    typer.echo(f"Admin {created.admin.user.email} one-time password: {created.admin.password}")


@slo_app.command("report")
def slo_report_command(
    period: str = typer.Option("30d", help="Period ending at --end: 30d, 7d, 24h, 90m"),
    end: datetime | None = typer.Option(None, help="End of the period (ISO 8601; default now)"),
    prometheus_url: str | None = typer.Option(None, help="Prometheus (env PROMETHEUS_URL)"),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table"),
) -> None:
    """Each SLO's attainment and remaining error budget over a period, from Prometheus."""
    from server.observability.slo_report import ReportError, format_report, slo_report

    url = prometheus_url or get_settings().prometheus_url
    try:
        statuses = slo_report(url, period, end)
    except (ReportError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from error
    if as_json:
        typer.echo(json.dumps([status.as_dict() for status in statuses], indent=2))
    else:
        typer.echo(f"Error budgets over {period} ending {end.isoformat() if end else 'now'} "
                   f"({url}):")
        typer.echo(format_report(statuses))
    if any(status.status == "exhausted" for status in statuses):
        raise typer.Exit(code=1)


@app.command("seed-demo")
def seed_demo_command() -> None:
    """Create the demo tenant (idempotent) and print its logins."""
    with _database(get_settings()) as ready:
        _print_logins(ready)



def _register_workbook_commands() -> None:
    from server.modules.workbooks.cli import excel, template, verify_workbook

    app.command("template")(template)
    app.command("verify-workbook")(verify_workbook)
    app.add_typer(excel, name="excel")


_register_workbook_commands()
app.command("verify-bundle")(verify_bundle_command)
app.add_typer(audit_app, name="audit")


def _audit_in_tenant(tenant_id: uuid.UUID, action: str) -> None:
    from server.db.session import tenant_session
    from server.modules.audit import service
    from server.settings import get_settings

    with _database(get_settings()), tenant_session(tenant_id) as session:
        if action == "checkpoint":
            row = service.write_checkpoint(session)
            typer.echo(f"Checkpoint {row.seq}: {row.event_count} events, head "
                       f"{row.head_signature}")
            return
        report = service.verify_chain(session)
    typer.echo(f"ok={report.ok} checked={report.checked} checkpoints={report.checkpoints}"
               + ("" if report.ok else f" first bad: event {report.broken_event_id} / "
                  f"checkpoint {report.broken_checkpoint}: {report.reason}"))
    if not report.ok:
        raise typer.Exit(code=1)


@audit_app.command("checkpoint")
def audit_checkpoint(tenant: uuid.UUID = typer.Option(..., help="Tenant id")) -> None:
    """Write a signed checkpoint of the tenant's chain head now."""
    _audit_in_tenant(tenant, "checkpoint")


@audit_app.command("verify")
def audit_verify(tenant: uuid.UUID = typer.Option(..., help="Tenant id")) -> None:
    """Verify the tenant's chain, MACs and checkpoints (exit code 1 when broken)."""
    _audit_in_tenant(tenant, "verify")


keys_app = typer.Typer(help="PII encryption keys: KEK rotation, data keys.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("rotate")
def keys_rotate(new_data_key: bool = typer.Option(
        False, "--new-data-key", help="Also start a new data-key version per tenant "
        "(new data is sealed with it; older data stays readable).")) -> None:
    """New KEK version, every tenant's data keys rewrapped under it (audited), then the
    KEK versions no data key uses dropped. Back up the key file before and after."""
    from server.modules.keys.service import rotate_all
    from server.settings import get_settings

    with _database(get_settings()) as settings:
        done = rotate_all(settings, new_data_key)
    typer.echo(f"Active KEK: {done.kek_id}; {done.rewrapped} data key(s) of {done.tenants} "
               f"tenant(s) rewrapped; {done.new_data_keys} new data key(s); retired KEK "
               f"versions: {', '.join(done.retired) or 'none'}")
    for tenant_id, reason in done.failed:
        typer.echo(f"tenant {tenant_id}: NOT rewrapped: {reason}", err=True)
    if done.failed:
        raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
