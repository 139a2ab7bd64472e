"""FastAPI application factory: routers under /api/v1, problem+json errors, observability."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Response
from sqlalchemy import text

from server.db import session as db
from server.errors import install_error_handlers, problem_response
from server.modules import addin
from server.modules.adjustments.router import router as adjustments_router
from server.modules.approvals.router import router as approvals_router
from server.modules.audit.router import router as audit_router
from server.modules.audit.service import configure_audit_keys
from server.modules.auth.router import router as auth_router
from server.modules.auth.service import (
    configure_login_policy,
    configure_password_hashing,
    configure_sessions,
    stop_sessions,
)
from server.modules.catalog.router import router as catalog_router
from server.modules.deferrals.router import router as deferrals_router
from server.modules.inquiries.router import router as inquiries_router
from server.modules.ops.router import router as ops_router
from server.modules.plans.router import router as plans_router
from server.modules.reports.router import router as reports_router
from server.modules.runs.router import router as runs_router
from server.modules.sso.router import router as sso_router
from server.modules.tenants.router import router as tenants_router
from server.modules.uploads.router import router as uploads_router
from server.modules.workbooks.router import router as workbooks_router
from server.observability.logging import configure_logging
from server.observability.metrics import render_latest
from server.observability.middleware import RequestContextMiddleware
from server.observability.ratelimit import Buckets, MemoryBuckets, RateLimitMiddleware, RedisBuckets
from server.settings import Settings, get_settings
from server.worker import tasks as queued_tasks

API_PREFIX = "/api/v1"

# Every module's router, in one explicit list: add yours here.
API_ROUTERS: list[APIRouter] = [
    auth_router,
    sso_router,
    tenants_router,
    audit_router,
    catalog_router,
    plans_router,
    uploads_router,
    workbooks_router,
    reports_router,
    runs_router,
    approvals_router,
    ops_router,
    deferrals_router,
    inquiries_router,
    adjustments_router,
]


def _buckets(settings: Settings, per_minute: int, burst: int, name: str) -> Buckets:
    """Token buckets in Redis when REDIS_URL is set (shared by every API process)."""
    if settings.redis_url:
        return RedisBuckets(settings.redis_url, per_minute, burst,
                            prefix=f"paysheet:ratelimit:{name}:")
    return MemoryBuckets(per_minute, burst)


def _add_operational_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], response_model=None)
    def readyz() -> dict[str, str] | Response:
        """Readiness: the database answers a query."""
        try:
            with db.get_engine().connect() as connection:
                connection.execute(text("select 1"))
        except Exception as exc:
            return problem_response(
                None, 503, "Service Unavailable", f"database unreachable: {type(exc).__name__}"
            )
        return {"status": "ready"}

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def metrics() -> Response:
        body, content_type = render_latest()
        return Response(body, media_type=content_type)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API; `settings` defaults to the environment (tests pass their own)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    configure_password_hashing(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )
    configure_audit_keys(settings)
    configure_login_policy(settings)
    configure_sessions(settings)
    if settings.database_url:
        db.configure(settings)
    queued_tasks.register_all()  # every queued task, by name: add yours in server/worker/tasks.py

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.gc_freeze_at_start:
            gc.collect()
            gc.freeze()
        yield
        stop_sessions()
        db.release_connections()

    app = FastAPI(
        title="Paysheet API",
        version="1.0.0",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    _add_operational_routes(app)
    addin.mount(app)
    buckets = _buckets(settings, settings.rate_limit_per_minute, settings.rate_limit_burst,
                       "write")
    app.state.rate_buckets = buckets  # the per-account buckets of current_principal
    # Per client address on the OIDC sign-in routes (server/modules/sso/router.py).
    app.state.sign_in_buckets = _buckets(settings, settings.sign_in_rate_limit_per_minute,
                                         settings.sign_in_rate_limit_burst, "sign-in")
    app.add_middleware(RateLimitMiddleware, buckets=buckets)
    app.add_middleware(RequestContextMiddleware)
    return app
