"""Bulk inserts into RLS tables: COPY into a temp table, then INSERT … SELECT.

PostgreSQL refuses COPY FROM into a table with row-level security, so rows are streamed into
an unlogged, transaction-local temp table first and moved with one INSERT … SELECT, which
the tenant policy checks like any insert. The tenant id is always the session's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql
from sqlalchemy.orm import Session

from server.db.session import TenantNotSet

COPY_CHUNK = 1 << 20


def bulk_insert_csv(
    session: Session,
    table: str,
    columns: Sequence[tuple[str, str]],
    payload: bytes,
    constants: dict[str, Any],
) -> int:
    """Insert the CSV rows of `payload` (no header; `columns` = (name, SQL type) in order)
    into `comp.<table>` with `constants` (plus tenant_id) on every row; returns the count."""
    tenant_id = session.info.get("tenant_id")
    if tenant_id is None:
        raise TenantNotSet("bulk insert in a session without a tenant")
    constants = {**constants, "tenant_id": tenant_id}
    raw = session.connection().connection.driver_connection
    staging = sql.Identifier(f"_bulk_{table}")
    with raw.cursor() as cursor:
        cursor.execute(sql.SQL("create temp table {} ({}) on commit drop").format(
            staging,
            sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
                               for name, kind in columns)))
        with cursor.copy(sql.SQL("copy {} from stdin (format csv)").format(staging)) as copy:
            for start in range(0, len(payload), COPY_CHUNK):
                copy.write(payload[start:start + COPY_CHUNK])
        names = [name for name, _ in columns]
        cursor.execute(
            sql.SQL("insert into {} ({}) select {}, {} from {}").format(
                sql.Identifier("comp", table),
                sql.SQL(", ").join(sql.Identifier(n) for n in [*constants, *names]),
                sql.SQL(", ").join(sql.Placeholder() for _ in constants),
                sql.SQL(", ").join(sql.Identifier(n) for n in names),
                staging),
            [str(value) for value in constants.values()])
        inserted = cursor.rowcount
        cursor.execute(sql.SQL("drop table {}").format(staging))
    return inserted
