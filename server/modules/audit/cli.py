"""`paysheet audit …`: rotate the audit MAC key, anchor or verify a tenant's chain."""

from __future__ import annotations

import uuid

import typer

audit_app = typer.Typer(help="Audit chain: keys, checkpoints, verification.",
                        no_args_is_help=True)


@audit_app.command("rotate-key")
def rotate_key() -> None:
    """Add a new audit key to <data_dir>/audit-keys.json and make it active (old keys stay:
    events they signed still verify). With AUDIT_KEYS set, rotate there instead."""
    from server.modules.audit.keys import rotate_file_key
    from server.settings import get_settings

    settings = get_settings()
    if settings.audit_keys:
        typer.echo("AUDIT_KEYS is set: add the new key there and point AUDIT_ACTIVE_KEY at it.",
                   err=True)
        raise typer.Exit(code=1)
    typer.echo(f"Active audit key: {rotate_file_key(settings.data_dir)}")


def _in_tenant(tenant_id: uuid.UUID, action: str) -> None:
    from server.cli import _database
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
def checkpoint(tenant: uuid.UUID = typer.Option(..., help="Tenant id")) -> None:
    """Write a signed checkpoint of the tenant's chain head now."""
    _in_tenant(tenant, "checkpoint")


@audit_app.command("verify")
def verify(tenant: uuid.UUID = typer.Option(..., help="Tenant id")) -> None:
    """Verify the tenant's chain, MACs and checkpoints (exit code 1 when broken)."""
    _in_tenant(tenant, "verify")
