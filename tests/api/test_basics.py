"""Health, readiness, metrics, OpenAPI, request ids, problem+json, rate limits."""

from __future__ import annotations

import gc
import io
import json
import re
import uuid

import structlog
from fastapi.testclient import TestClient

from server.app import create_app
from server.observability.logging import configure_logging

PROBLEM = "application/problem+json"


def test_health_and_readiness(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_served_app_freezes_start_up_objects_out_of_the_collectors_reach(settings) -> None:
    """`paysheet serve` sets GC_FREEZE_AT_START: start-up's objects leave the young and old
    generations, so a full collection during requests walks only what requests allocated."""
    assert gc.get_freeze_count() == 0  # apps built for tests do not freeze
    app = create_app(settings.model_copy(update={"gc_freeze_at_start": True}))
    try:
        with TestClient(app) as local:
            assert local.get("/healthz").status_code == 200
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
        create_app(settings)  # rebind the shared engine to the test database


def test_readyz_answers_503_when_the_database_is_unreachable(settings) -> None:
    broken = settings.model_copy(
        update={"database_url": "postgresql://paysheet_app@127.0.0.1:1/nowhere"}
    )
    app = create_app(broken)
    try:
        with TestClient(app) as local:
            response = local.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM
    finally:
        create_app(settings)  # rebind the shared engine to the test database


def test_metrics_report_latency_by_route_template(client, make_tenant) -> None:
    tenant = make_tenant()
    client.get(f"/api/v1/tenants/{tenant.id}/users", headers=tenant.users["admin"].headers)
    text = client.get("/metrics").text
    assert re.search(
        r'paysheet_http_request_duration_seconds_count\{method="GET",'
        r'route="/api/v1/tenants/\{tenantId\}/users",status="200"\} \d',
        text,
    )


def test_openapi_and_docs(client) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert {"/api/v1/auth/token", "/api/v1/me", "/api/v1/audit"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_request_id_is_echoed_or_generated(client) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    generated = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    hostile = client.get("/healthz", headers={"X-Request-ID": "x" * 200}).headers["x-request-id"]
    assert hostile != "x" * 200


def test_unknown_route_is_problem_json_with_request_id(client) -> None:
    response = client.get("/api/v1/nothing-here", headers={"X-Request-ID": "rid-404"})
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["request_id"] == "rid-404" and body["instance"] == "/api/v1/nothing-here"
    assert set(body) == {"type", "title", "status", "detail", "errors", "instance", "request_id"}


def _exhaust_write_bucket(app) -> list[int]:
    headers = {"Authorization": f"Bearer {uuid.uuid4().hex}"}
    with TestClient(app) as local:
        statuses = [
            local.post("/api/v1/auth/logout", headers=headers).status_code for _ in range(3)
        ]
        limited = local.post("/api/v1/auth/logout", headers=headers)
        assert limited.headers["content-type"] == PROBLEM
        assert int(limited.headers["retry-after"]) >= 1
        statuses.append(limited.status_code)
        statuses.append(local.get("/api/v1/me", headers=headers).status_code)
    return statuses


def test_write_rate_limit_in_process(settings) -> None:
    app = create_app(
        settings.model_copy(update={"rate_limit_per_minute": 1, "rate_limit_burst": 2})
    )
    assert _exhaust_write_bucket(app) == [401, 401, 429, 429, 401]


def test_write_rate_limit_in_redis_is_shared_by_processes(settings, redis_url) -> None:
    limited = settings.model_copy(
        update={"rate_limit_per_minute": 1, "rate_limit_burst": 2, "redis_url": redis_url}
    )
    first, second = create_app(limited), create_app(limited)
    headers = {"Authorization": f"Bearer {uuid.uuid4().hex}"}
    with TestClient(first) as one, TestClient(second) as two:
        statuses = [
            one.post("/api/v1/auth/logout", headers=headers).status_code,
            two.post("/api/v1/auth/logout", headers=headers).status_code,
            one.post("/api/v1/auth/logout", headers=headers).status_code,
        ]
    assert statuses == [401, 401, 429]


def test_log_lines_go_to_stdout_as_it_is_when_written(monkeypatch, settings) -> None:
    """Regression: the stdout of configure time was kept, so once a test runner had closed
    it, the log call in `rows.fill_rows`' error handler raised ValueError out of it."""
    configured = io.StringIO()
    monkeypatch.setattr("sys.stdout", configured)
    configure_logging("INFO", json_output=True)
    configured.close()
    current = io.StringIO()
    monkeypatch.setattr("sys.stdout", current)
    try:
        structlog.get_logger("test").error("written_after_the_swap")
    finally:
        configure_logging(settings.log_level, settings.log_json)
    assert json.loads(current.getvalue())["event"] == "written_after_the_swap"


def test_access_log_is_json_with_request_and_user_ids(client, make_tenant, settings) -> None:
    tenant = make_tenant()
    buffer = io.StringIO()
    configure_logging("INFO", json_output=True)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(buffer))
    try:
        headers = tenant.users["hr"].headers | {"X-Request-ID": "log-check-1"}
        assert client.get("/api/v1/me", headers=headers).status_code == 200
    finally:
        configure_logging(settings.log_level, settings.log_json)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    access = [e for e in lines if e.get("event") == "request" and e["route"] == "/api/v1/me"]
    assert len(access) == 1
    assert access[0]["request_id"] == "log-check-1"
    assert access[0]["user_id"] == str(tenant.users["hr"].id)
    assert access[0]["tenant_id"] == str(tenant.id) and access[0]["status"] == 200
