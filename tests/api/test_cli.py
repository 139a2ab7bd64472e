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
