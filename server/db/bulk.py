"""Bulk loading into RLS tables: COPY into a temp table, then INSERT ... SELECT.

PostgreSQL refuses COPY FROM into a table with row level security, so rows are copied into
a transaction-local temp table (no RLS, dropped at commit) and moved over with one
INSERT ... SELECT that the table's policies check as usual. The tenant id comes from the
session, never from the data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from psycopg import sql
from sqlalchemy.orm import Session

from server.db.base import SCHEMA


class CopyWriter(Protocol):
    def write(self, data: bytes) -> None: ...


def _driver_connection(session: Session) -> Any:
    return session.connection().connection.driver_connection


@contextmanager
def staged_copy(session: Session, stage: str, columns: Sequence[tuple[str, str]]
                ) -> Iterator[CopyWriter]:
    """A temp table `stage` (name, SQL type pairs) and a COPY ... FROM STDIN (CSV) writer."""
    conn = _driver_connection(session)
    definition = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in columns)
    with conn.cursor() as cursor:
        cursor.execute(sql.SQL("create temp table {} ({}) on commit drop").format(
            sql.Identifier(stage), definition))
        statement = sql.SQL("copy {} ({}) from stdin (format csv)").format(
            sql.Identifier(stage), sql.SQL(", ").join(sql.Identifier(n) for n, _ in columns))
        with cursor.copy(statement) as copy:
            yield copy


def insert_staged(session: Session, stage: str, table: str, columns: Sequence[str],
                  constants: Mapping[str, Any]) -> int:
    """INSERT INTO comp.`table` (tenant_id, *constants, *columns) SELECT from `stage`."""
    conn = _driver_connection(session)
    names = ["tenant_id", *constants, *columns]
    values = [sql.Placeholder()] * (1 + len(constants)) + [sql.Identifier(c) for c in columns]
    statement = sql.SQL("insert into {}.{} ({}) select {} from {}").format(
        sql.Identifier(SCHEMA), sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(n) for n in names),
        sql.SQL(", ").join(values), sql.Identifier(stage))
    with conn.cursor() as cursor:
        cursor.execute(statement, [session.info["tenant_id"], *constants.values()])
        return cursor.rowcount
