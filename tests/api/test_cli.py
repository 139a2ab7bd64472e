"""`paysheet tenant create`, `seed-demo` and `migrate` against the test database."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from server.cli import app as cli
from server.settings import get_settings

runner = CliRunner()


@pytest.fixture
def cli_env(database, monkeypatch, tmp_path):
    for key, value in {
        "DATABASE_URL": database.app,
        "MIGRATION_DATABASE_URL": database.migrate,
        "DATA_DIR": str(tmp_path),
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_PARALLELISM": "1",
        "LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _login(client, email, password):
    return client.post("/api/v1/auth/token", json={"email": email, "password": password})


def test_tenant_create_prints_a_working_one_time_password(client, cli_env) -> None:
    result = runner.invoke(
        cli,
        [
            "tenant",
            "create",
            "--name",
            "Cli Capital",
            "--admin-email",
            "Boss@CliCapital.example.com",
        ],
    )
    assert result.exit_code == 0, result.output
    password = re.search(r"one-time password: (\S+)", result.output).group(1)
    assert _login(client, "boss@clicapital.example.com", password).status_code == 200


def test_tenant_create_rejects_a_bad_email(cli_env) -> None:
    result = runner.invoke(cli, ["tenant", "create", "--name", "X", "--admin-email", "nope"])
    assert result.exit_code == 1
    assert "not an email address" in result.output


def test_seed_demo_is_idempotent_and_recovers_lost_logins(client, cli_env) -> None:
    first = runner.invoke(cli, ["seed-demo"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli, ["seed-demo"])
    assert second.output == first.output
    saved = json.loads((cli_env / "demo-logins.json").read_text())["passwords"]
    assert set(saved) == {
        f"{r}@demo.paysheet.local"
        for r in ("admin", "hr", "manager", "finance", "auditor", "readonly")
    }
    assert (
        _login(
            client, "manager@demo.paysheet.local", saved["manager@demo.paysheet.local"]
        ).status_code
        == 200
    )
    (cli_env / "demo-logins.json").unlink()
    third = runner.invoke(cli, ["seed-demo"])
    renewed = json.loads((cli_env / "demo-logins.json").read_text())["passwords"]
    assert third.exit_code == 0 and renewed != saved
    assert (
        _login(
            client, "admin@demo.paysheet.local", renewed["admin@demo.paysheet.local"]
        ).status_code
        == 200
    )


def test_migrate_is_idempotent(cli_env) -> None:
    result = runner.invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_api_worker_count_defaults_to_the_cpus_with_an_external_database() -> None:
    from server.settings import Settings, api_worker_count

    assert api_worker_count(Settings(api_workers=3), embedded_database=True) == 3
    assert api_worker_count(Settings(), embedded_database=True) == 1
    assert 1 <= api_worker_count(Settings(), embedded_database=False) <= 4


def _spawned_workers(pid: int) -> int:
    """Children of `pid` started by multiprocessing's spawn (uvicorn's worker processes)."""
    from pathlib import Path

    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sum(1 for child in children
               if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes())


def test_serve_workers_flag_starts_that_many_api_processes(cli_env, database) -> None:
    """`paysheet serve --workers 2`: two API processes on one port, both on the database."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    from tests.uploads.server_process import ROOT, free_port

    port = free_port()
    env = {**os.environ, "EMBEDDED_WORKERS": "0", "MIGRATION_DATABASE_URL": ""}
    server = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--workers", "2",
                               "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while _spawned_workers(server.pid) < 2 or not _ready(port):
            assert server.poll() is None, f"serve exited with {server.returncode}"
            assert time.monotonic() < deadline, "the API processes did not start"
            time.sleep(0.1)  # start-up readiness poll
        assert _spawned_workers(server.pid) == 2
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert all(client.get("/readyz").status_code == 200 for _ in range(6))
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=60)
    assert server.returncode == 0


def _ready(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
