"""The error-budget report for the API: Prometheus problems become clear HTTP errors."""

from __future__ import annotations

from datetime import datetime

from server.errors import ProblemError, UnprocessableEntity
from server.observability.slo_report import ReportError, check_period, slo_report
from server.settings import Settings


def report(settings: Settings, period: str, end: datetime | None) -> dict:
    try:
        check_period(period)
    except ValueError as error:
        raise UnprocessableEntity([{"loc": ["query", "period"], "msg": str(error),
                                    "type": "value_error"}]) from error
    try:
        statuses = slo_report(settings.prometheus_url, period, end)
    except ReportError as error:
        raise ProblemError(503, "Service Unavailable", str(error)) from error
    return {"period": period, "end": end.isoformat() if end else None,
            "prometheus_url": settings.prometheus_url,
            "items": [status.as_dict() for status in statuses]}
