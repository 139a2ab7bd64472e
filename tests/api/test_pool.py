"""Pooled connections are pinged only after an idle spell (db.session._ping_when_idle): one
cut by the database while idle (a restart, a firewall) is replaced before a request uses it,
while a busy connection costs no ping. Real PostgreSQL; the cut is pg_terminate_backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from server.db.session import _ping_when_idle, sqlalchemy_url


@pytest.fixture
def one_connection_pool(settings) -> Iterator[Callable[[float], Engine]]:
    engines: list[Engine] = []

    def make(idle_seconds: float) -> Engine:
        engine = create_engine(sqlalchemy_url(settings.database_url), pool_size=1,
                               max_overflow=0)
        _ping_when_idle(engine, idle_seconds)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("select pg_backend_pid()")).scalar_one()


def _cut(postgres_admin_url: str, pid: int) -> None:
    """Terminate the backend and return once it is gone (termination is asynchronous)."""
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        assert admin.execute("select pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        while admin.execute("select count(*) from pg_stat_activity where pid = %s",
                            (pid,)).fetchone()[0]:
            pass


def test_an_idle_connection_cut_by_the_database_is_replaced(one_connection_pool,
                                                            postgres_admin_url) -> None:
    engine = one_connection_pool(0.0)  # every checkout after any idle time pings
    first = _backend_pid(engine)
    _cut(postgres_admin_url, first)
    second = _backend_pid(engine)  # the ping failed, the pool connected afresh
    assert second != first


def test_without_the_idle_ping_the_cut_connection_fails_the_request(one_connection_pool,
                                                                    postgres_admin_url) -> None:
    """The control: a connection not pinged (idle less than the bound) is handed out dead."""
    engine = one_connection_pool(3600.0)
    _cut(postgres_admin_url, _backend_pid(engine))
    with pytest.raises(OperationalError):
        _backend_pid(engine)
    assert _backend_pid(engine) > 0  # the failure invalidated it; the next one is fresh
