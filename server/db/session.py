"""Engines and tenant-bound sessions: the first layer of tenant isolation.

Every unit of work on tenant data runs in `tenant_session(tenant_id)`: one transaction whose
first statement is `set_config('app.tenant_id', …, true)` (the RLS key, local to the
transaction) and in which every ORM statement touching a `TenantScoped` model gets a
`tenant_id = :tid` criterion. A statement on tenant tables in a session without a tenant
raises `TenantNotSet` before reaching the database; RLS (migrations) is the second layer.
The request-scoped session (`DbSession`, bound to the caller) is
`server.modules.auth.dependencies`: this layer knows tenants, not callers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import Connection, Engine, bindparam, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria

from server.db.base import TenantScoped
from server.settings import Settings, get_settings


class TenantNotSet(RuntimeError):
    """A statement touched tenant tables in a session that has no tenant: a programming error."""


class TenantSession(Session):
    """Session class carrying the tenant listeners (other Session users are unaffected)."""


def sqlalchemy_url(url: str) -> str:
    """Turn a libpq-style `postgresql://` URL into SQLAlchemy's psycopg 3 dialect URL."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


@dataclass
class _DbState:
    engine: Engine | None = None
    factory: sessionmaker[TenantSession] | None = None
    url: str | None = None


_state = _DbState()


def configure(settings: Settings) -> Engine:
    """(Re)bind the process-wide app-role engine to `settings.database_url`."""
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set (the CLI starts the embedded database)")
    url = sqlalchemy_url(settings.database_url)
    if _state.engine is not None and _state.url == url:
        return _state.engine
    if _state.engine is not None:
        _state.engine.dispose()
    _state.engine = create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=settings.db_pool_pre_ping,
    )
    if not settings.db_pool_pre_ping and settings.db_ping_idle_seconds >= 0:
        _ping_when_idle(_state.engine, settings.db_ping_idle_seconds)
    _state.factory = sessionmaker(bind=_state.engine, class_=TenantSession, expire_on_commit=False)
    _state.url = url
    return _state.engine


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Test a pooled connection at checkout only when it sat idle longer than `idle_seconds`.

    Pre-ping on every checkout is a round trip per checkout; a connection in steady use has
    just proven itself, while one idle for a while may have been cut by a database restart
    or a firewall. A failed ping makes the pool discard it and connect afresh (SQLAlchemy's
    DisconnectionError protocol), so the request never sees the dead connection.
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since <= idle_seconds:
            return
        try:
            ok = engine.dialect._do_ping_w_event(dbapi_connection)
        except Exception as error:
            raise DisconnectionError(str(error)) from error
        if not ok:
            raise DisconnectionError("idle connection failed its ping")


def get_engine() -> Engine:
    """The app-role engine, configured from the environment on first use."""
    if _state.engine is None:
        configure(get_settings())
    assert _state.engine is not None
    return _state.engine


def release_connections() -> None:
    """Close every pooled connection (app shutdown); the engine stays usable."""
    if _state.engine is not None:
        _state.engine.dispose()


def _factory() -> sessionmaker[TenantSession]:
    get_engine()
    assert _state.factory is not None
    return _state.factory


@contextmanager
def tenant_session(tenant_id: uuid.UUID) -> Iterator[Session]:
    """One transaction bound to `tenant_id`: commits on success, rolls back on any exception."""
    if tenant_id is None:
        raise TenantNotSet("tenant_session() needs a tenant id")
    session = _factory()(info={"tenant_id": uuid.UUID(str(tenant_id))})
    try:
        with session.begin():
            yield session
    finally:
        session.close()


@contextmanager
def system_session() -> Iterator[Session]:
    """A session with no tenant, for tenant-less work (health checks, definer functions).

    Any ORM statement on a tenant table inside it raises `TenantNotSet`, and raw SQL on one
    fails in the database because `app.tenant_id` is unset.
    """
    session = _factory()()
    try:
        with session.begin():
            yield session
    finally:
        session.close()


@event.listens_for(TenantSession, "after_begin")
def _set_tenant_guc(session: Session, transaction: object, connection: Connection) -> None:
    tenant_id = session.info.get("tenant_id")
    if tenant_id is None:
        return
    tid = str(uuid.UUID(str(tenant_id)))  # a UUID's text: safe to put in the statement
    raw = connection.connection.dbapi_connection
    if not _begin_with_tenant(raw, tid):
        connection.execute(text("select set_config('app.tenant_id', :tid, true)"), {"tid": tid})


def _begin_with_tenant(raw: Any, tid: str) -> bool:
    """BEGIN and the tenant's set_config in one round trip, when the driver would otherwise
    send a bare BEGIN first (psycopg outside autocommit, default transaction options).

    psycopg starts a transaction with its own round trip before the first statement; sent
    together, the two cost the database one message instead of two (and skip SQLAlchemy's
    statement machinery). psycopg then sees the transaction open and only sends COMMIT or
    ROLLBACK. Anything else (autocommit, an isolation level) takes the ordinary path.
    """
    if not isinstance(raw, psycopg.Connection) or raw.autocommit or any(
        option is not None for option in (raw.isolation_level, raw.read_only, raw.deferrable)
    ):
        return False
    if raw.pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return False
    result = raw.pgconn.exec_(
        f"BEGIN; SELECT set_config('app.tenant_id', '{tid}', true)".encode()
    )
    if result.status != pq.ExecStatus.TUPLES_OK:
        raise psycopg.errors.error_from_result(result, encoding=raw.info.encoding)
    return True


# The tenant criterion of every ORM statement, built once: it compares with a bound
# parameter that `_filter_by_tenant` supplies per execution. A lambda closing over the
# tenant id is re-analysed for every statement (about 0.3 ms each, twice a typical request);
# this one is a constant. A statement reaching the database without the parameter fails
# ("a value is required for bind parameter"): it can never run unfiltered.
TENANT_PARAM = "paysheet_tenant_criteria"
_TENANT_CRITERIA = with_loader_criteria(  # the name written out: the lambda may not read globals
    TenantScoped, lambda cls: cls.tenant_id == bindparam("paysheet_tenant_criteria"),
    include_aliases=True, track_closure_variables=False,
)


@event.listens_for(TenantSession, "do_orm_execute")
def _filter_by_tenant(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    touches_tenant_table = any(
        issubclass(mapper.class_, TenantScoped) for mapper in state.all_mappers
    )
    if not touches_tenant_table:
        return
    tenant_id = state.session.info.get("tenant_id")
    if tenant_id is None:
        raise TenantNotSet("query on tenant tables in a session without a tenant")
    state.statement = state.statement.options(_TENANT_CRITERIA)
    params = state.parameters
    state.parameters = (
        [{**row, TENANT_PARAM: tenant_id} for row in params] if isinstance(params, list)
        else {**(params or {}), TENANT_PARAM: tenant_id}
    )


@event.listens_for(TenantSession, "before_flush")
def _stamp_tenant_on_new_rows(session: Session, flush_context: object, instances: object) -> None:
    """New tenant rows get the session's tenant; a row for another tenant is refused."""
    tenant_id = session.info.get("tenant_id")
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, TenantScoped):
            continue
        if tenant_id is None:
            raise TenantNotSet(f"writing {type(obj).__name__} in a session without a tenant")
        if obj.tenant_id is None:
            obj.tenant_id = tenant_id
        elif obj.tenant_id != tenant_id:
            raise TenantNotSet(f"{type(obj).__name__} belongs to another tenant")
