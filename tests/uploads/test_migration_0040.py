"""Migration 0040 runs forward on a database that already holds employee_rows."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
from alembic.config import Config

from server.db.bootstrap import (
    MIGRATIONS_DIR,
    drop_database,
    ensure_database,
    ensure_roles,
    with_login,
)
from server.settings import OWNER_ROLE
from tests.conftest import ROLE_PASSWORD


def _upgrade(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    command.upgrade(config, revision)


@pytest.fixture
def at_0030(postgres_admin_url: str) -> Iterator[str]:
    """A scratch database migrated to 0030 (the owner's URL), dropped afterwards."""
    name = f"paysheet_mig40_{uuid.uuid4().hex[:8]}"
    ensure_roles(postgres_admin_url, ROLE_PASSWORD)
    ensure_database(postgres_admin_url, name)
    url = with_login(postgres_admin_url, database=name)
    try:
        _upgrade(url, "0030")
        yield url
    finally:
        drop_database(postgres_admin_url, name)


def test_0040_keeps_existing_rows_and_numbers_them(at_0030: str) -> None:
    tenant, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(at_0030, autocommit=True) as conn:
        conn.execute(f"set role {OWNER_ROLE}")
        conn.execute("insert into comp.tenants (id, name) values (%s, 'T')", (tenant,))
        for upload in (first, second):
            conn.execute("insert into comp.uploads (id, tenant_id, filename, status) "
                         "values (%s, %s, 'f.csv', 'ready')", (upload, tenant))
        for upload, refs in ((first, ["E3", "E1", "E2"]), (second, ["F1"])):
            for ref in refs:
                conn.execute("insert into comp.employee_rows (tenant_id, upload_id, "
                             "employee_ref, raw) values (%s, %s, %s, %s)",
                             (tenant, upload, ref, json.dumps({"employee_ref": ref})))

    _upgrade(at_0030, "head")

    with psycopg.connect(at_0030, autocommit=True) as conn:
        conn.execute(f"set role {OWNER_ROLE}")
        stored = conn.execute("select upload_id, file_row, employee_ref, raw->>'employee_ref' "
                              "from comp.employee_rows order by upload_id = %s, file_row",
                              (second,)).fetchall()
        assert stored == [(first, 1, "E1", "E1"), (first, 2, "E2", "E2"),
                          (first, 3, "E3", "E3"), (second, 1, "F1", "F1")]
        key = conn.execute("select pg_get_constraintdef(oid) from pg_constraint where "
                           "conname = 'employee_rows_pkey'").fetchone()[0]
        assert key == "PRIMARY KEY (upload_id, file_row)"
        indexes = conn.execute("select indexname from pg_indexes where "
                               "tablename = 'employee_rows'").fetchall()
        assert indexes == [("employee_rows_pkey",)]
        conn.execute("delete from comp.uploads where id = %s", (first,))
        left = conn.execute("select upload_id from comp.employee_rows").fetchall()
        assert left == [(second,)]
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("insert into comp.employee_rows (tenant_id, upload_id, file_row, "
                         "employee_ref, raw) values (%s, %s, 2, 'E9', '{}')", (tenant, first))
