"""`paysheet audit rotate-key` (checkpoint and verify are added by server/cli.py, which
owns the database start-up)."""

from __future__ import annotations

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
