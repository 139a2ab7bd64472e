"""Bulk loading into RLS tables: COPY into a temp table, then INSERT ... SELECT.

PostgreSQL refuses COPY FROM into a table with row level security, so rows are copied into
a transaction-local temp table (no RLS, dropped at commit) and moved over with
INSERT ... SELECT, which the table's policies check as usual. The tenant id comes from the
session, never from the data.

`StagedInserter` does this per chunk on a background thread that owns the session's
connection until `finish()`, so the database works while the caller prepares the next
chunk (on two cores the two overlap instead of adding up). Everything stays inside the
caller's transaction: a later rollback removes every row.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import sql
from sqlalchemy.orm import Session

from server.db.base import SCHEMA

_DONE = object()


class StagedInserter:
    """Feed CSV chunks (no header) with `submit`; `finish` returns the rows inserted."""

    def __init__(self, session: Session, table: str, columns: Sequence[tuple[str, str]],
                 values: Mapping[str, sql.Composable], stage: str = "bulk_stage",
                 depth: int = 2):
        """`columns`: the stage table's (name, SQL type), in CSV order; `values`: each
        target column's SQL over the stage columns (e.g. `sql.Literal(upload_id)`,
        `sql.Identifier("employee_ref")`). `tenant_id` is added from the session."""
        self._conn = session.connection().connection.driver_connection
        self._tenant_id = session.info["tenant_id"]
        self._table, self._columns, self._values = table, list(columns), dict(values)
        self._stage = stage
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._inserted = 0
        self._thread = threading.Thread(target=self._run, name=f"bulk-{table}", daemon=True)
        self._thread.start()

    def submit(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(chunk)

    def finish(self) -> int:
        self._queue.put(_DONE)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._inserted

    def abandon(self) -> None:
        """Stop without raising (the caller is failing anyway and will roll back)."""
        self._queue.put(_DONE)
        self._thread.join()

    def _statements(self) -> tuple[sql.Composed, sql.Composed, sql.Composed]:
        names = [n for n, _ in self._columns]
        stage = sql.Identifier(self._stage)
        create = sql.SQL("create temp table if not exists {} ({}) on commit drop").format(
            stage, sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t))
                                      for n, t in self._columns))
        copy = sql.SQL("copy {} ({}) from stdin (format csv)").format(
            stage, sql.SQL(", ").join(map(sql.Identifier, names)))
        targets = ["tenant_id", *self._values]
        values = [sql.Placeholder(), *self._values.values()]
        insert = sql.SQL("insert into {}.{} ({}) select {} from {}").format(
            sql.Identifier(SCHEMA), sql.Identifier(self._table),
            sql.SQL(", ").join(map(sql.Identifier, targets)), sql.SQL(", ").join(values), stage)
        return create, copy, insert

    def _run(self) -> None:
        create, copy, insert = self._statements()
        params = [self._tenant_id]
        try:
            with self._conn.cursor() as cursor:
                cursor.execute(create)
                cursor.execute(sql.SQL("truncate {}").format(sql.Identifier(self._stage)))
                while (chunk := self._queue.get()) is not _DONE:
                    with cursor.copy(copy) as writer:
                        writer.write(chunk)
                    cursor.execute(insert, params)
                    self._inserted += cursor.rowcount
                    cursor.execute(sql.SQL("truncate {}").format(sql.Identifier(self._stage)))
        except BaseException as error:  # reported to the caller by submit/finish
            self._error = error
            while self._queue.get() is not _DONE:
                continue
