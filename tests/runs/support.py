"""Test builders for runs: a locked plan and ready uploads, written as their modules write them.

The plans and uploads modules are being built alongside runs; until their APIs are merged,
these helpers insert a locked `bonus_plans` row (document + plan hash) and a ready `uploads`
row whose typed, normalised Parquet (hashed) sits on disk with `employee_rows` filled, the
shapes `server.modules.runs.inputs` reads.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
from fastapi.testclient import TestClient

from engine.hashing import plan_hash
from engine.plan import validate_document

SAMPLE_PLAN = Path(__file__).resolve().parents[2] / "samples" / "plans" / "fund_bonus.json"
DEC = pl.Decimal(38, 10)
FINISHED = ("draft", "failed")


def sample_document() -> dict[str, Any]:
    return json.loads(SAMPLE_PLAN.read_text(), parse_float=Decimal)


def insert_locked_plan(owner_conn: psycopg.Connection, tenant_id: uuid.UUID,
                       document: dict[str, Any]) -> uuid.UUID:
    """A locked plan row holding `document` and its engine plan hash."""
    doc = validate_document(json.loads(json.dumps(document, default=str)))
    return owner_conn.execute(
        "insert into comp.bonus_plans (tenant_id, name, version, status, document, plan_hash,"
        " locked_at, currency, effective_from) values (%s, %s, %s, 'locked', %s, %s, now(),"
        " %s, %s) returning id",
        (tenant_id, f"{doc.name} {uuid.uuid4().hex[:6]}", doc.version,
         json.dumps(document, default=str), plan_hash(doc), doc.currency, doc.effective_from),
    ).fetchone()[0]


def typed_frame(text: pl.DataFrame, document: dict[str, Any]) -> pl.DataFrame:
    """Text columns typed by the plan's input dtypes (what a normalised upload holds)."""
    dtypes = {spec["key"]: spec["dtype"] for spec in document["inputs"]}
    columns = []
    for name in text.columns:
        column = pl.col(name)
        kind = dtypes.get(name, "text")
        if kind in ("decimal", "int"):
            column = column.cast(DEC)
        elif kind == "date":
            column = column.str.to_date("%Y-%m-%d")
        elif kind == "bool":
            column = column.str.to_lowercase().is_in(["true", "1", "yes"])
        columns.append(column.alias(name))
    return text.select(columns)


def insert_ready_upload(owner_conn: psycopg.Connection, tenant_id: uuid.UUID,
                        frame: pl.DataFrame, directory: Path, kind: str = "employees",
                        mapping: dict[str, str] | None = None) -> uuid.UUID:
    """A ready upload: Parquet on disk (SHA-256 of its bytes), uploads row, employee_rows."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex}.parquet"
    frame.write_parquet(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    mapping = mapping or {column: column for column in frame.columns}
    metadata = {"normalized_path": str(path), "data_sha256": digest, "mapping": mapping,
                "rows": frame.height}
    upload_id = owner_conn.execute(
        "insert into comp.uploads (tenant_id, filename, kind, status, file_size, sha256,"
        " metadata) values (%s, %s, %s, 'ready', %s, %s, %s) returning id",
        (tenant_id, f"{kind}.csv", kind, path.stat().st_size, digest, json.dumps(metadata)),
    ).fetchone()[0]
    if kind == "employees":
        rows = frame.select(pl.col("employee_ref"), pl.struct(
            [pl.col(c).cast(pl.String) for c in frame.columns]).struct.json_encode().alias("raw"))
        with owner_conn.cursor() as cursor:
            cursor.executemany(
                "insert into comp.employee_rows (tenant_id, upload_id, employee_ref, raw)"
                " values (%s, %s, %s, %s)",
                [(tenant_id, upload_id, ref, raw) for ref, raw in rows.iter_rows()])
    return upload_id


def wait_for_run(client: TestClient, run_id: str, headers: dict[str, str],
                 deadline_seconds: float = 120.0,
                 done: Callable[[dict], bool] = lambda run: run["status"] in FINISHED) -> dict:
    """Poll GET /runs/{id} until `done` holds (bounded by a deadline, not a sleep)."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        response = client.get(f"/api/v1/runs/{run_id}", headers=headers)
        assert response.status_code == 200, response.text
        run = response.json()
        if done(run):
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']}: {run}"
        time.sleep(0.05)
