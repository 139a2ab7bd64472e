"""Create the two database roles, a database owned by the owner role, and migrate it.

Used by the embedded server (`paysheet serve`) and by the test fixtures, both of which hold a
superuser connection. Against an external server the operator creates the roles instead
(docs/operations.md) and only `paysheet migrate` runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy.engine import make_url

from server.settings import APP_ROLE, OWNER_ROLE

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
_ROLE_LOCK_KEY = 0x7061_7973  # cluster roles are shared by parallel test workers


def with_login(
    url: str, *, user: str | None = None, password: str | None = None, database: str | None = None
) -> str:
    """`url` with another user, password and/or database (libpq form, password kept)."""
    parsed = make_url(url)
    if user is not None:
        parsed = parsed.set(username=user, password=password)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def ensure_roles(admin_url: str, password: str) -> None:
    """Create `paysheet_owner` and `paysheet_app` if missing (idempotent, race-safe)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (_ROLE_LOCK_KEY,))
        try:
            for role, attributes in (
                (OWNER_ROLE, "login nosuperuser nocreatedb nocreaterole"),
                (APP_ROLE, "login nosuperuser nocreatedb nocreaterole nobypassrls noinherit"),
            ):
                exists = conn.execute(
                    "select 1 from pg_roles where rolname = %s", (role,)
                ).fetchone()
                if exists:
                    continue
                conn.execute(
                    sql.SQL("create role {} " + attributes + " password {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_ROLE_LOCK_KEY,))


def ensure_database(admin_url: str, name: str) -> bool:
    """Create database `name` owned by the owner role; True when it was created."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            return False
        conn.execute(
            sql.SQL("create database {} owner {}").format(
                sql.Identifier(name), sql.Identifier(OWNER_ROLE)
            )
        )
        return True


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def run_migrations(url: str) -> None:
    """`alembic upgrade head` against `url` (a login able to act as the owner role)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    command.upgrade(config, "head")


@dataclass(frozen=True)
class DatabaseUrls:
    """The URLs of one bootstrapped database: superuser, migrations, and the app role."""

    admin: str
    migrate: str
    app: str
    name: str


def bootstrap(admin_url: str, name: str, role_password: str) -> DatabaseUrls:
    """Roles + database + migrations; returns the URLs the server and tests connect with."""
    ensure_roles(admin_url, role_password)
    ensure_database(admin_url, name)
    migrate_url = with_login(admin_url, database=name)
    run_migrations(migrate_url)
    app_url = with_login(admin_url, user=APP_ROLE, password=role_password, database=name)
    return DatabaseUrls(admin=admin_url, migrate=migrate_url, app=app_url, name=name)
