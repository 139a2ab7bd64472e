"""Fixtures for run tests: an in-process consumer on the PostgresHuey queue, sample data."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import psycopg
import pytest
from fastapi import FastAPI

from samples.generate import employees, fund_table
from server.settings import Settings
from server.worker.consumer import start_embedded_consumer, stop_embedded_consumer
from tests.runs.support import (
    insert_locked_plan,
    insert_ready_upload,
    sample_document,
    typed_frame,
)


@pytest.fixture(scope="session")
def consumer(app: FastAPI, settings: Settings) -> Iterator[None]:
    """Two worker threads consuming the app's queue (PostgresHuey on the test database),
    the same in-process consumer `paysheet serve` runs."""
    running = start_embedded_consumer(settings.model_copy(update={"embedded_workers": 2}))
    yield
    stop_embedded_consumer(running)


@dataclass(frozen=True)
class SampleRun:
    """A locked sample plan and its ready uploads in one tenant, plus the CSV files."""

    plan_id: uuid.UUID
    upload_id: uuid.UUID
    funds_upload_id: uuid.UUID
    employees_csv: Path
    funds_csv: Path
    plan_path: Path


@pytest.fixture
def sample_inputs(owner_conn: psycopg.Connection, tmp_path: Path
                  ) -> Callable[..., SampleRun]:
    """Factory: sample plan (optionally edited) + generated data for `tenant_id`."""

    def factory(tenant_id: uuid.UUID, count: int = 200, funds: int = 6, seed: int = 7,
                document: dict | None = None,
                edit_employees: Callable[[pl.DataFrame], pl.DataFrame] | None = None
                ) -> SampleRun:
        document = document or sample_document()
        people = employees(count, funds, seed)
        if edit_employees is not None:
            people = edit_employees(people)
        fund_rows = fund_table(funds, seed)
        folder = tmp_path / uuid.uuid4().hex[:8]
        folder.mkdir()
        employees_csv, funds_csv = folder / "employees.csv", folder / "funds.csv"
        people.write_csv(employees_csv, line_terminator="\n")
        fund_rows.write_csv(funds_csv, line_terminator="\n")
        import json

        plan_path = folder / "plan.json"
        plan_path.write_text(json.dumps(document, default=str))
        plan_id = insert_locked_plan(owner_conn, tenant_id, document)
        upload_id = insert_ready_upload(owner_conn, tenant_id, typed_frame(people, document),
                                        folder / "data")
        funds_id = insert_ready_upload(owner_conn, tenant_id, typed_frame(fund_rows, document),
                                       folder / "data", kind="funds")
        return SampleRun(plan_id, upload_id, funds_id, employees_csv, funds_csv, plan_path)

    return factory
