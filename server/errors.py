"""Problem errors (RFC 9457 `application/problem+json`) and the handlers that render them.

Services raise these; routers stay thin. Every body carries `type`, `title`, `status`,
`detail`, `errors` (each with `loc` and `msg`), `instance` (the path) and `request_id`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
# SQLSTATE raised by the immutability triggers (migration 0001): locked plan, finalized run,
# append-only audit. Integrity violations that mean "conflicts with existing data":
IMMUTABLE_SQLSTATE = "PS409"
CONFLICT_SQLSTATES = {"23505": "unique", "23503": "foreign key", "23P01": "exclusion"}
log = structlog.get_logger(__name__)


class ProblemError(Exception):
    """An error the client is meant to see, rendered as problem+json with `status`."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


class NotFound(ProblemError):
    """The object does not exist *for this caller* (other tenants' objects included)."""

    def __init__(self, entity: str, detail: str | None = None) -> None:
        super().__init__(404, "Not Found", detail or f"{entity} not found")
        self.entity = entity


class Conflict(ProblemError):
    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(409, "Conflict", detail, errors)


class Forbidden(ProblemError):
    def __init__(self, detail: str = "your role does not allow this action") -> None:
        super().__init__(403, "Forbidden", detail)


class Unauthorized(ProblemError):
    def __init__(self, detail: str = "missing, invalid or expired bearer token") -> None:
        super().__init__(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


class UnprocessableEntity(ProblemError):
    """Input that parses but is wrong; each error names its field in `loc`."""

    def __init__(self, errors: list[dict[str, Any]], detail: str | None = None) -> None:
        first = errors[0] if errors else {}
        where = ".".join(str(part) for part in first.get("loc", []))
        summary = detail or (f"{where}: {first.get('msg')}" if first else "invalid input")
        super().__init__(422, "Unprocessable Entity", summary, errors)


class TooManyRequests(ProblemError):
    def __init__(self, retry_after_seconds: int, limit: str = "write") -> None:
        super().__init__(
            429,
            "Too Many Requests",
            f"{limit} rate limit exceeded; retry in {retry_after_seconds} s",
            headers={"Retry-After": str(retry_after_seconds)},
        )


def problem_body(
    request: Request | None,
    status: int,
    title: str,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The problem+json document; also used by middleware that answers before routing."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": errors or [],
        "instance": request.url.path if request is not None else None,
        "request_id": request_id,
    }


def problem_response(
    request: Request | None,
    status: int,
    title: str,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(request, status, title, detail, errors),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as problem+json, including FastAPI's own validation errors."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(request, exc.status, exc.title, exc.detail, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        err = UnprocessableEntity(errors)
        return problem_response(request, 422, err.title, err.detail, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = HTTPStatus(exc.status_code).phrase
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(
            request, exc.status_code, title, detail, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        sqlstate = getattr(exc.orig, "sqlstate", None)
        diag = getattr(exc.orig, "diag", None)
        if sqlstate == IMMUTABLE_SQLSTATE:
            return problem_response(request, 409, "Conflict", diag.message_primary)
        if sqlstate in CONFLICT_SQLSTATES:
            constraint = getattr(diag, "constraint_name", None) or "a constraint"
            return problem_response(
                request,
                409,
                "Conflict",
                f"{CONFLICT_SQLSTATES[sqlstate]} constraint {constraint} would be violated",
            )
        log.exception("database_error", path=request.url.path, sqlstate=sqlstate)
        return problem_response(request, 500, "Internal Server Error", "database error")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return problem_response(request, 500, "Internal Server Error", "unexpected error")
