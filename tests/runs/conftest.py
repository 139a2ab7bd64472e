"""Fixtures for run tests: an app with its own data directory and queue, an in-process
consumer (PostgresHuey, thread workers: what `paysheet serve` runs), and sample inputs
created through the plans and uploads APIs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from samples.generate import employees, fund_table
from server.app import create_app
from server.settings import Settings
from server.worker.consumer import start_embedded_consumer, stop_embedded_consumer
from tests.runs.support import create_locked_plan, ready_upload, sample_document


@pytest.fixture(scope="session")
def runs_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings.model_copy(update={
        "data_dir": tmp_path_factory.mktemp("runs-data"),
        "queue_name": f"runs-test-{uuid.uuid4().hex[:8]}",
        "embedded_workers": 2,
    })


@pytest.fixture(scope="session")
def rc(runs_settings: Settings) -> Iterator[TestClient]:
    """Test client of the runs app."""
    with TestClient(create_app(runs_settings)) as client:
        yield client


@pytest.fixture(scope="session")
def consumer(rc: TestClient, runs_settings: Settings) -> Iterator[None]:
    # No minute-by-minute recovery: it scans the whole database, so it would take the
    # crash test's deliberately orphaned run (tests/runs/test_worker.py, other queue and
    # attempt limit) and finish it under this consumer's limit.
    running = start_embedded_consumer(runs_settings, periodic=False)
    yield
    stop_embedded_consumer(running)


@dataclass(frozen=True)
class SampleRun:
    """A locked sample plan and its ready uploads in one tenant, plus the same data as CSV."""

    plan_id: str
    upload_id: str
    funds_upload_id: str
    employees_csv: Path
    funds_csv: Path
    plan_path: Path

    def body(self, **extra: Any) -> dict[str, Any]:
        return {"plan_id": self.plan_id, "upload_id": self.upload_id,
                "funds_upload_id": self.funds_upload_id, **extra}


def _identity(frame: pl.DataFrame) -> dict[str, str]:
    return {column: column for column in frame.columns}


@pytest.fixture
def sample_inputs(rc: TestClient, consumer: None, tmp_path: Path) -> Callable[..., SampleRun]:
    """Factory: the sample plan (or `document`) locked, generated employees and funds
    uploaded, mapped and validated (by the consumer) and ready, for `tenant`."""

    def factory(tenant: Any, count: int = 200, funds: int = 6, seed: int = 7,
                document: dict | None = None,
                edit_employees: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
                edit_funds: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
                ) -> SampleRun:
        document = document or sample_document()
        people = employees(count, funds, seed)
        fund_rows = fund_table(funds, seed)
        people = edit_employees(people) if edit_employees else people
        fund_rows = edit_funds(fund_rows) if edit_funds else fund_rows
        folder = tmp_path / uuid.uuid4().hex[:8]
        folder.mkdir()
        employees_csv, funds_csv = folder / "employees.csv", folder / "funds.csv"
        people.write_csv(employees_csv, line_terminator="\n")
        fund_rows.write_csv(funds_csv, line_terminator="\n")
        plan_path = folder / "plan.json"
        plan_path.write_text(json.dumps(document, default=str))
        plan_id = create_locked_plan(rc, tenant, document)
        upload_id = ready_upload(rc, tenant, employees_csv.read_bytes(), "employees", plan_id,
                                 _identity(people))
        funds_id = ready_upload(rc, tenant, funds_csv.read_bytes(), "funds", plan_id,
                                _identity(fund_rows))
        return SampleRun(plan_id, upload_id, funds_id, employees_csv, funds_csv, plan_path)

    return factory
