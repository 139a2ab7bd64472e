"""Alembic environment: migrations always run as the owner role `paysheet_owner`.

The URL comes from `config.attributes["url"]` (server.db.migrate), else the settings
(`MIGRATION_DATABASE_URL`, then `DATABASE_URL`). A login that is a member of the owner role
(a superuser, an operator account) switches to it with `SET ROLE`, so every object is owned
by `paysheet_owner` and never by the login itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import context
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from server.db.session import sqlalchemy_url
from server.settings import OWNER_ROLE, get_settings

SCHEMA = "comp"

# Revisions share helpers as `migrations.<module>` (migrations/rls.py). Alembic loads them by
# file path and adds nothing to sys.path when it is started without alembic.ini (as
# server.db.bootstrap does), so the folder that holds `migrations/` is added here. Appended,
# not prepended: it must not shadow an installed package.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)


def _url() -> str:
    url = context.config.attributes.get("url")
    if url:
        return url
    settings = get_settings()
    url = settings.migration_database_url or settings.database_url
    if not url:
        raise RuntimeError("set MIGRATION_DATABASE_URL (owner role) to run migrations")
    return url


def _become_owner(connection: Connection) -> None:
    exists = connection.scalar(
        text("select exists (select 1 from pg_roles where rolname = :r)"), {"r": OWNER_ROLE}
    )
    if not exists:
        raise RuntimeError(
            f"role {OWNER_ROLE} does not exist; create it first (docs/operations.md)"
        )
    current = connection.scalar(text("select current_user"))
    if current != OWNER_ROLE:
        is_member = connection.scalar(
            text("select pg_has_role(current_user, :r, 'MEMBER')"), {"r": OWNER_ROLE}
        )
        if not is_member:
            raise RuntimeError(f"{current} cannot act as {OWNER_ROLE}; run migrations as owner")
        connection.execute(text(f"set role {OWNER_ROLE}"))
    connection.execute(text(f"create schema if not exists {SCHEMA}"))
    connection.commit()


def run_migrations_online() -> None:
    engine = create_engine(sqlalchemy_url(_url()), poolclass=NullPool)
    with engine.connect() as connection:
        _become_owner(connection)
        context.configure(
            connection=connection,
            target_metadata=None,
            version_table_schema=SCHEMA,
            transactional_ddl=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline migrations are not supported")
run_migrations_online()
