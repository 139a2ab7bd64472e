"""PII at rest: no plaintext salary of the sample data in the database's files, the typed
Parquet or the stored run inputs; key rotation keeps every run reproducible; a wrong or
missing KEK and another tenant's key fail with a clear error, never garbage."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from server.db.session import tenant_session
from server.modules.keys import service as keys
from server.modules.keys.kms import KeyUnavailable, LocalKeyFileKms, key_file_path
from tests.runs.support import API, wait_for_run
from tests.uploads.sealed import opened_typed
from tests.uploads.waiting import settled
from tests.uploads.workbook_files import xlsx

SAMPLE_SALARIES = 12
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _needles(salaries: list[str]) -> dict[str, bytes]:
    """Each salary as text (JSON, CSV, problem values) and as the 16-byte big-endian
    Decimal(38,10) Parquet and Arrow store it in."""
    found: dict[str, bytes] = {}
    for text in salaries:
        unscaled = int(Decimal(text).scaleb(10))
        found[f"text {text}"] = text.encode()
        found[f"decimal128-be {text}"] = unscaled.to_bytes(16, "big", signed=True)
        found[f"decimal128-le {text}"] = unscaled.to_bytes(16, "little", signed=True)
    return found


def _hits(data: bytes, needles: dict[str, bytes]) -> list[str]:
    return [name for name, needle in needles.items() if needle in data]


def _relation_files(admin_url: str, name: str) -> dict[str, list[Path]]:
    """Every heap, TOAST and index file of schema `comp` in database `name`, after a
    CHECKPOINT wrote the shared buffers out."""
    with psycopg.connect(admin_url, dbname=name, autocommit=True) as conn:
        conn.execute("checkpoint")
        data_dir = Path(conn.execute("show data_directory").fetchone()[0])
        rows = conn.execute("""
            select c.relname, pg_relation_filepath(c.oid)
              from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = 'comp' and c.relkind in ('r', 'i', 'm')
            union all
            select c.relname || ' (toast)', pg_relation_filepath(t.oid)
              from pg_class c join pg_namespace n on n.oid = c.relnamespace
              join pg_class t on t.oid = c.reltoastrelid
             where n.nspname = 'comp'""").fetchall()
    if not data_dir.is_dir() or not any(data_dir.iterdir()):
        pytest.fail(f"cannot read PostgreSQL's data directory {data_dir}: this test greps the "
                    "raw relation files and must run where they are readable (as root)")
    files: dict[str, list[Path]] = {}
    for relname, relative in rows:
        if relative:
            base = data_dir / relative
            files[relname] = [p for p in [base, *sorted(base.parent.glob(base.name + ".*"))]
                              if p.is_file()]
    assert files.get("employee_rows"), files.keys()
    return files


@pytest.fixture
def uncompressed(database) -> None:
    """Every compressible column of schema `comp` stored uncompressed from now on (storage
    EXTERNAL): a value PostgreSQL would compress (a JSONB over ~2 kB) stays greppable, so a
    plaintext salary cannot hide from the byte scan inside a compressed TOAST chunk."""
    with psycopg.connect(database.admin, dbname=database.name, autocommit=True) as conn:
        columns = conn.execute("""
            select c.relname, a.attname from pg_attribute a
              join pg_class c on c.oid = a.attrelid
              join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = 'comp' and c.relkind = 'r' and a.attnum > 0
               and not a.attisdropped and a.attstorage in ('x', 'm')""").fetchall()
        for table, column in columns:
            conn.execute(f'alter table comp."{table}" alter column "{column}" '
                         "set storage external")


@pytest.fixture
def sample_run(rc, make_tenant, sample_inputs, uncompressed):
    tenant = make_tenant()
    sample = sample_inputs(tenant, count=300, funds=6)
    hr = tenant.users["hr"].headers
    started = rc.post(f"{API}/runs", headers=hr, json=sample.body())
    assert started.status_code in (201, 202), started.text
    run = wait_for_run(rc, started.json()["run_id"], hr)
    assert run["status"] == "draft", run
    upload = settled(rc, hr, sample.upload_id)
    assert upload["rows"]["status"] == "filled", upload
    # The same people as a workbook: its first rows are kept for the preview at upload.
    people = pl.read_csv(sample.employees_csv, infer_schema=False)
    workbook = xlsx({"Staff": [people.columns, *people.head(50).rows()]})
    kept = rc.post(f"{API}/uploads", headers=hr, data={"kind": "employees"},
                   files={"file": ("staff.xlsx", workbook, XLSX)})
    assert kept.status_code == 201, kept.text
    preview = rc.get(f"{API}/uploads/{kept.json()['id']}/preview", headers=hr)
    assert preview.status_code == 200, preview.text
    assert preview.json()["rows"][0]["cells"][4] == people.row(0)[4]  # opened for readers
    return tenant, sample, run, upload


def test_no_plaintext_salary_in_database_files_parquet_or_run_inputs(
        rc, runs_settings, database, sample_run) -> None:
    tenant, sample, run, upload = sample_run
    salaries = pl.read_csv(sample.employees_csv, infer_schema=False
                           ).get_column("base_salary").head(SAMPLE_SALARIES).to_list()
    needles = _needles(salaries)
    typed_path = Path(runs_settings.data_dir) / "uploads" / str(tenant.id) / "objects" / \
        f"{upload['parquet_sha256']}.parquet"
    # The needles find the salaries where they are in plaintext (the CSV as uploaded), and
    # the sealed Parquet holds them: opened, it reads back with exactly these salaries.
    assert len(_hits(sample.employees_csv.read_bytes(), needles)) == SAMPLE_SALARIES
    typed = pl.read_parquet(opened_typed(runs_settings, tenant.id, typed_path))
    assert {str(v.normalize()) for v in typed.get_column("base_salary").head(SAMPLE_SALARIES)
            } == {str(Decimal(v).normalize()) for v in salaries}
    with pytest.raises(pa.ArrowInvalid):
        pq.read_table(typed_path)  # at rest it is not Parquet at all
    leaks: list[str] = []
    for relname, paths in _relation_files(database.admin, database.name).items():
        for path in paths:
            leaks += [f"{relname} ({path.name}): {hit}" for hit in _hits(path.read_bytes(),
                                                                          needles)]
    stored = [p for p in Path(runs_settings.data_dir).rglob("*")
              if p.is_file() and p.suffix in (".parquet", ".arrows")]
    assert typed_path in stored
    for path in stored:
        leaks += [f"{path}: {hit}" for hit in _hits(path.read_bytes(), needles)]
    # Stored run inputs: the snapshot names the sealed typed data by its plaintext hash.
    with psycopg.connect(database.admin, dbname=database.name) as conn:
        snapshot = conn.execute("select snapshot from comp.plan_runs where id = %s",
                                (run["id"],)).fetchone()[0]
    assert snapshot["data_sha256"] and not _hits(json.dumps(snapshot).encode(), needles)
    assert leaks == []


def test_rotation_rewraps_and_every_run_reproduces_identically(rc, runs_settings,
                                                                 sample_run) -> None:
    tenant, _, run, _ = sample_run
    hr = tenant.users["hr"].headers
    before = LocalKeyFileKms(key_file_path(runs_settings)).kek_ids
    done = keys.rotate_all(runs_settings)
    keys.forget_cached_keys()
    # (Tenants of servers the suite starts with their own key file may be reported failed:
    # one deployment has one KMS; this tenant's keys must be rotated.)
    assert done.kek_id not in before and done.rewrapped >= 1
    assert tenant.id not in {failed for failed, _ in done.failed}
    mine = {kek for owner, kek, _ in keys.wrapping() if owner == tenant.id}
    assert mine == {done.kek_id}
    in_use = {kek for _, kek, _ in keys.wrapping()}
    after = LocalKeyFileKms(key_file_path(runs_settings)).kek_ids
    assert done.kek_id in after and all(kek in in_use for kek in after if kek != done.kek_id)
    assert all(kek not in after for kek in before if kek not in in_use)
    again = rc.post(f"{API}/runs/{run['id']}/reproduce", headers=hr)
    assert again.status_code == 200, again.text
    assert again.json()["reproduced_results_hash"] == run["results_hash"]
    events = rc.get(f"{API}/audit", params={"entity_id": str(tenant.id)},
                    headers=tenant.users["admin"].headers).json()["items"]
    assert any(e["action"] == "keys.rotate" for e in events)
    # A new data-key version seals new data; what the old one sealed still opens.
    with tenant_session(tenant.id) as session:
        old = keys.cipher(session, runs_settings)
        sealed = old.seal("test.field", "123456.78")
        assert keys.new_data_key_version(session, runs_settings) == old.active + 1
    with tenant_session(tenant.id) as session:
        new = keys.cipher(session, runs_settings)
        assert new.active == old.active + 1 and new.open("test.field", sealed) == "123456.78"


def test_wrong_or_missing_kek_is_a_clear_error(runs_settings, make_tenant, tmp_path) -> None:
    tenant = make_tenant()
    with tenant_session(tenant.id) as session:
        keys.cipher(session, runs_settings)  # creates and wraps the tenant's data key
    for name in ("other.json", "missing/pii-keys.json"):
        wrong = runs_settings.model_copy(update={"pii_key_file": tmp_path / name})
        keys.forget_cached_keys()
        with tenant_session(tenant.id) as session, pytest.raises(KeyUnavailable) as error:
            keys.cipher(session, wrong)
        assert "is not in the PII key file" in str(error.value)  # for the operator
        assert error.value.status == 503 and str(tmp_path) not in error.value.detail
    key_file = key_file_path(runs_settings)
    key_file.chmod(0o644)
    try:
        with pytest.raises(KeyUnavailable, match="readable by group or others"):
            LocalKeyFileKms(key_file).active_kek_id  # noqa: B018
    finally:
        key_file.chmod(0o600)


def test_another_tenants_key_cannot_decrypt(runs_settings, make_tenant, database) -> None:
    one, two = make_tenant(), make_tenant()
    with tenant_session(one.id) as session:
        mine = keys.cipher(session, runs_settings)
    with tenant_session(two.id) as session:
        theirs = keys.cipher(session, runs_settings)
    sealed = mine.seal(keys.PROBLEM_VALUE, "123456.78")
    assert mine.open(keys.PROBLEM_VALUE, sealed) == "123456.78"
    with pytest.raises(keys.Undecryptable):
        theirs.open(keys.PROBLEM_VALUE, sealed)
    with pytest.raises(keys.Undecryptable):  # same tenant, other field
        mine.open(keys.EMPLOYEE_ROWS, sealed)
    # Tenant one's wrapped key copied onto tenant two's row does not unwrap.
    with psycopg.connect(database.admin, dbname=database.name, autocommit=True) as conn:
        conn.execute("""update comp.tenant_data_keys set wrapped = (select wrapped from
                        comp.tenant_data_keys where tenant_id = %s and version = 1),
                        kek_id = (select kek_id from comp.tenant_data_keys
                        where tenant_id = %s and version = 1)
                        where tenant_id = %s""", (one.id, one.id, two.id))
    keys.forget_cached_keys()
    with tenant_session(two.id) as session, pytest.raises(KeyUnavailable,
                                                         match="does not open"):
        keys.cipher(session, runs_settings)
