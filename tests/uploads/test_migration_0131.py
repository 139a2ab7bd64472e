"""Migration 0131 runs forward on a database (and data directory) that already hold
plaintext PII: everything sensitive comes out sealed, nothing is lost, hashes stay."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from server.db.bootstrap import (
    MIGRATIONS_DIR,
    drop_database,
    ensure_database,
    ensure_roles,
    with_login,
)
from server.db.session import sqlalchemy_url
from server.modules.keys import service as keys
from server.modules.uploads import sealing
from server.settings import OWNER_ROLE, Settings
from tests.conftest import ROLE_PASSWORD

SALARY = "187654.32"


def _upgrade(url: str, revision: str, settings: Settings | None = None) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    config.attributes["settings"] = settings
    command.upgrade(config, revision)


@pytest.fixture
def at_0130(postgres_admin_url: str) -> Iterator[str]:
    name = f"paysheet_mig131_{uuid.uuid4().hex[:8]}"
    ensure_roles(postgres_admin_url, ROLE_PASSWORD)
    ensure_database(postgres_admin_url, name)
    url = with_login(postgres_admin_url, database=name)
    try:
        _upgrade(url, "0130")
        yield url
    finally:
        drop_database(postgres_admin_url, name)


def _plaintext_data(url: str, data_dir: Path) -> tuple[uuid.UUID, uuid.UUID, Path, bytes]:
    tenant, upload = uuid.uuid4(), uuid.uuid4()
    summary = {"rows": 1, "warnings": [{"kind": "thousands", "column": "Salary",
                                        "input_key": "base_salary", "count": 1,
                                        "message": "m", "samples": [
                                            {"row": 2, "value": "187,654.32",
                                             "read_as": SALARY}]}]}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"set role {OWNER_ROLE}")
        conn.execute("insert into comp.tenants (id, name) values (%s, 'T')", (tenant,))
        for key, label, dtype in (("base_salary", "Base salary", "decimal"),
                                  ("team", "Team", "text")):
            conn.execute("insert into comp.input_catalog (tenant_id, key, label, dtype, "
                         "sensitive) values (%s, %s, %s, %s, %s)",
                         (tenant, key, label, dtype, key == "base_salary"))
        conn.execute("insert into comp.uploads (id, tenant_id, filename, kind, status, "
                     "metadata) values (%s, %s, 'f.csv', 'employees', 'ready', %s)",
                     (upload, tenant, json.dumps({
                         "summary": summary, "sample": [{"row": 2, "cells": ["E1", SALARY]}],
                         "format": {"columns": ["Ref", "Salary"], "profile": {"decided": {
                             "decimal": f"detected from values like '{SALARY}'"}}}})))
        conn.execute("insert into comp.employee_rows (tenant_id, upload_id, file_row, "
                     "employee_ref, raw) values (%s, %s, 2, 'E1', %s)",
                     (tenant, upload, json.dumps({"employee_ref": "E1", "team": "T01",
                                                  "base_salary": SALARY})))
        conn.execute("insert into comp.upload_problems (tenant_id, upload_id, seq, file_row, "
                     "column_name, input_key, value, rule, message, hint) values "
                     "(%s, %s, 1, 3, 'Salary', 'base_salary', %s, '{}', 'm', 'h')",
                     (tenant, upload, SALARY))
    objects = data_dir / "uploads" / str(tenant) / "objects"
    objects.mkdir(parents=True)
    parquet = objects / "typed.parquet"
    pl.DataFrame({"employee_ref": ["E1"], "base_salary": [SALARY]}).write_parquet(parquet)
    parquet.chmod(0o440)
    return tenant, upload, parquet, parquet.read_bytes()


def test_0131_seals_existing_rows_problems_summaries_and_files(at_0130, tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, pii_key_file=tmp_path / "keys" / "pii-keys.json")
    tenant, upload, parquet, before = _plaintext_data(at_0130, tmp_path)

    _upgrade(at_0130, "head", settings)
    _upgrade(at_0130, "0131", settings)  # idempotent: at head already

    with psycopg.connect(at_0130) as conn:
        conn.execute(f"set role {OWNER_ROLE}")
        raw = conn.execute("select raw from comp.employee_rows").fetchone()[0]
        value = conn.execute("select value from comp.upload_problems").fetchone()[0]
        summary, meta = conn.execute("select metadata -> 'summary', metadata from comp.uploads"
                                     ).fetchone()
    everything = json.dumps([raw, value, meta])
    assert SALARY not in everything and "187,654.32" not in everything
    assert raw["team"] == "T01" and sealing.SEALED in raw and "base_salary" not in raw
    assert not parquet.read_bytes().startswith(b"PAR1")
    assert parquet.stat().st_mode & 0o777 == 0o440
    engine = create_engine(sqlalchemy_url(at_0130))
    with Session(engine) as session:
        session.connection().exec_driver_sql(f"set role {OWNER_ROLE}")
        cipher = keys.cipher(session, settings, tenant)
    engine.dispose()
    assert sealing.opened_row(raw, cipher, upload, 2)["base_salary"] == SALARY
    assert cipher.open(keys.PROBLEM_VALUE, value) == SALARY
    opened = sealing.opened_summary(summary, lambda: cipher)
    assert opened["warnings"][0]["samples"][0] == {"row": 2, "value": "187,654.32",
                                                   "read_as": SALARY}
    assert json.loads(cipher.open(sealing.SAMPLE, meta["sample"]))[0]["cells"][1] == SALARY
    assert sealing.opened_format(meta["format"], lambda: cipher)["profile"]["decided"] == {
        "decimal": f"detected from values like '{SALARY}'"}
    plain = cipher.open_file(parquet, keys.TYPED_DATA)
    assert hashlib.sha256(plain).digest() == hashlib.sha256(before).digest()


def test_0131_on_a_database_without_pii_touches_no_kms(at_0130, tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, pii_key_file=tmp_path / "pii-keys.json")
    _upgrade(at_0130, "head", settings)
    assert not (tmp_path / "pii-keys.json").exists()
