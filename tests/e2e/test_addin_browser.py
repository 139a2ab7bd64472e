"""The real task pane in headless Chromium (Debian `chromium`, driven by playwright-core) against
a live server on the test database (with a run worker), with the in-memory Office.js
stand-in: sign in (a wrong password first) → sync → step error in the sheet (clicking the
problem selects its cell) → fix → test vectors → lock (cancelled, then confirmed) → upload the
active sheet → confirm the mapping → start a run → results sheet → one employee's tape (typed,
then by selecting a row) → approvals by four users, each signing in: manager, a second hr
user (the starter is refused by four-eyes), finance, and an admin who finalizes (cancelled,
then confirmed), the history naming each → download the audit workbook and statements;
sign-out clears the messages; the page opened outside Excel says so. Screenshots and
downloads go to tests/artifacts/."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import threading
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from openpyxl import load_workbook

from server.app import create_app
from server.db import session as db
from server.modules.auth.permissions import Role
from server.modules.tenants import service as tenants
from server.settings import Settings
from server.worker.consumer import start_embedded_consumer, stop_embedded_consumer
from tests.addin.node import ADDIN, ensure_node_modules, tool

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
SCREENSHOTS = ("addin-0-outside-excel.png", "addin-1-step-error.png",
               "addin-2a-lock-confirm.png", "addin-2-locked.png", "addin-3-mapping.png",
               "addin-4-run-computed.png", "addin-5-finance.png",
               "addin-6-finance-approved.png", "addin-7-finalize-confirm.png",
               "addin-8-finalized.png")
# A small employees sheet for the sample plan, fund inputs on every row (constant per
# fund), every score high enough to be eligible: no null payouts, so the run can be approved.
HEADER = ("Employee ID,Fund,Level,Team,Base Salary,Performance Score,Fund Return,Fund Pool")
FUNDS = {"F1": ("0.12", "250000"), "F2": ("0.03", "90000")}
LEVELS = ("analyst", "associate", "vp", "director")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def run_app(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """The app with its own data directory and queue, and one in-process run worker."""
    own = settings.model_copy(update={
        "data_dir": tmp_path_factory.mktemp("e2e-data"),
        "queue_name": f"e2e-{uuid.uuid4().hex[:8]}",
        "embedded_workers": 1,
    })
    app = create_app(own)
    consumer = start_embedded_consumer(own, periodic=False)  # see tests/runs/conftest.py
    yield app
    stop_embedded_consumer(consumer)


@pytest.fixture
def live_server(run_app: FastAPI) -> Iterator[str]:
    """The test app served by uvicorn on a free loopback port, stopped afterwards."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(run_app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(400):
        if server.started:
            started.set()
            break
        thread.join(0.025)
    assert started.is_set(), "the live server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join()


def employees_csv(path: Path) -> Path:
    lines = [HEADER]
    for number in range(1, 13):
        fund = "F1" if number % 3 else "F2"
        salary = 80_000 + number * 7_250
        score = 2 + (number % 4) * 0.75
        lines.append(f"E{number:02d},{fund},{LEVELS[number % 4]},T{number % 3 + 1},{salary},"
                     f"{score:g},{FUNDS[fund][0]},{FUNDS[fund][1]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def second_hr(tenant_id: uuid.UUID) -> dict[str, str]:
    """Another hr user: the starter may not approve the hr stage (four-eyes)."""
    with db.tenant_session(tenant_id) as session:
        created = tenants.add_user(session, None, email=f"hr2-{uuid.uuid4().hex[:6]}@example.com",
                                   role=Role.HR, display_name="Second HR", teams=[],
                                   password=f"second-hr-{uuid.uuid4().hex}")
    return {"email": created.user.email, "password": created.password}


def permanent_passwords(tenant_id: uuid.UUID) -> None:
    """The pane signs the same users in more than once; one-time passwords work once."""
    with db.tenant_session(tenant_id) as session:
        for user in tenants.list_users(session):
            user.password_is_temporary = False
            user.password_expires_at = None


def test_task_pane_in_chromium(live_server, make_tenant, client, tmp_path):
    node = tool("node")
    chromium = tool("chromium")  # Debian's package; playwright never downloads a browser
    ensure_node_modules()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tenant = make_tenant()
    permanent_passwords(tenant.id)
    users = {role: {"email": tenant.users[role].email, "password": tenant.users[role].password}
             for role in ("hr", "manager", "finance", "admin")}
    users["hr2"] = second_hr(tenant.id)
    env = os.environ | {"BASE_URL": live_server, "USERS": json.dumps(users),
                        "DATA_CSV": str(employees_csv(tmp_path / "employees.csv")),
                        "ARTIFACTS": str(ARTIFACTS), "CHROMIUM": chromium}
    result = subprocess.run([node, "tests/browser/pane.browser.mjs"], cwd=ADDIN, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "browser flow passed" in result.stdout, result.stdout
    print(result.stdout)
    for name in SCREENSHOTS:
        assert (ARTIFACTS / name).stat().st_size > 10_000, name

    run_id = re.search(r"run ([0-9a-f-]{36})", result.stdout).group(1)
    run = client.get(f"/api/v1/runs/{run_id}", headers=tenant.users["auditor"].headers).json()
    assert run["status"] == "finalized"
    history = run["approvals"]["history"]
    assert [(h["actor_role"], h["actor_name"]) for h in history] == [
        ("manager", "Manager"), ("hr", "Second HR"), ("finance", "Finance"), ("admin", "Admin")]
    assert run["created_by"] == str(tenant.users["hr"].id)
    workbook = load_workbook(io.BytesIO((ARTIFACTS / "addin-audit.xlsx").read_bytes()))
    cover = {row[0]: row[1] for row in workbook["Cover"].iter_rows(min_row=3, values_only=True)
             if row[0]}
    assert cover["run id"] == run_id
    assert cover["results hash"] == run["results_hash"]
    assert cover["snapshot hash"] == run["snapshot_hash"]
    assert cover["status"] == "finalized"
    assert "finance_approve" in cover["approval 3"] and "finalize" in cover["approval 4"]
    assert "Admin <" in cover["approval 4"]
    with zipfile.ZipFile(ARTIFACTS / "addin-statements.zip") as bundle:
        pdfs = [name for name in bundle.namelist() if name.endswith(".pdf")]
    assert len(pdfs) == 12, bundle.namelist()
