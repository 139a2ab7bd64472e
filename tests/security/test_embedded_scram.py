"""The embedded database (`paysheet serve` without DATABASE_URL) trusts nobody: every role
authenticates with a SCRAM password, pg_hba.conf has no trust line, and the start-up stays
zero-step (the secrets are created in the data directory, mode 0600)."""

from __future__ import annotations

import psycopg
import pytest

from server.db.bootstrap import with_login
from server.db.embedded import ROLES_SECRET, SUPERUSER_SECRET, start_embedded
from server.settings import APP_ROLE, OWNER_ROLE


def test_embedded_server_requires_scram_for_every_role(tmp_path) -> None:
    embedded = start_embedded(tmp_path)
    try:
        hba = (embedded.server.pgdata / "pg_hba.conf").read_text()
        rules = [line.split() for line in hba.splitlines() if line and not line.startswith("#")]
        assert rules and all(rule[-1] == "scram-sha-256" for rule in rules)
        assert "trust" not in " ".join(" ".join(rule) for rule in rules)
        for name in (SUPERUSER_SECRET, ROLES_SECRET):
            assert (tmp_path / name).stat().st_mode & 0o077 == 0
        bare = embedded.server.get_uri(database="paysheet")  # the wheel's password-less URL
        for role in ("postgres", OWNER_ROLE, APP_ROLE):
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(with_login(bare, user=role, password="wrong")).close()
        with psycopg.connect(embedded.urls.app) as conn:  # the app role's own secret works
            assert conn.execute("select current_user").fetchone()[0] == APP_ROLE
        with psycopg.connect(embedded.urls.migrate) as conn:
            verifiers = conn.execute(
                "select rolname, rolpassword from pg_authid where rolcanlogin").fetchall()
        assert {name for name, _ in verifiers} >= {"postgres", OWNER_ROLE, APP_ROLE}
        assert all(secret and secret.startswith("SCRAM-SHA-256$") for _, secret in verifiers)
    finally:
        embedded.release()
    again = start_embedded(tmp_path)  # a second start joins with the stored secrets
    try:
        with psycopg.connect(again.urls.app) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        again.release()
