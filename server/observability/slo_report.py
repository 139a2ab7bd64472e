"""Error-budget report: each SLO's attainment and remaining budget over a period, read from
Prometheus (the same SLI expressions as the recording rules, server.observability.slo).

Used by `paysheet slo report` and `GET /api/v1/ops/slo`. Prometheus is the system of record:
nothing here is stored, so the report for a past period can be asked for again at any time.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import httpx

from server.observability.slo import SLOS, WINDOW, Slo

PERIOD = re.compile(r"^([1-9][0-9]{0,3})([mhdw])$")


class ReportError(Exception):
    """Prometheus unreachable or refusing the query; the message says which."""


@dataclass(frozen=True)
class SloStatus:
    slo: str
    title: str
    objective: float
    period: str
    events: float | None  # requests / runs / exports in the period (None: no data)
    error_ratio: float | None
    attainment: float | None
    budget_remaining: float | None  # 1 = untouched, 0 = spent, < 0 = overspent
    status: str  # ok | exhausted | no data
    measured_by: str

    def as_dict(self) -> dict:
        return asdict(self)


def check_period(period: str) -> str:
    """A Prometheus duration of one unit (`30d`, `6h`); ValueError names the field."""
    if not PERIOD.match(period):
        raise ValueError(f"period: '{period}' is not a duration like 30d, 7d, 24h or 90m")
    return period


def _query(client: httpx.Client, base: str, expr: str, at: datetime | None) -> float | None:
    params = {"query": expr}
    if at is not None:
        params["time"] = f"{at.timestamp():.3f}"
    try:
        response = client.get(f"{base.rstrip('/')}/api/v1/query", params=params)
    except httpx.HTTPError as error:
        raise ReportError(f"Prometheus at {base} unreachable: {type(error).__name__}") from error
    body = response.json() if response.headers.get("content-type", "").startswith(
        "application/json") else {}
    if response.status_code != 200 or body.get("status") != "success":
        raise ReportError(f"Prometheus refused the query ({response.status_code}): "
                          f"{body.get('error', response.text[:200])}")
    result = body["data"]["result"]
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if math.isnan(value) else value


def _status(slo: Slo, period: str, events: float | None, ratio: float | None) -> SloStatus:
    if ratio is None or not events:
        return SloStatus(slo.name, slo.title, slo.objective, period, events, None, None, None,
                         "no data", slo.measured_by)
    remaining = 1.0 - ratio / slo.budget
    return SloStatus(slo.name, slo.title, slo.objective, period, round(events, 3),
                     ratio, 1.0 - ratio, remaining,
                     "ok" if remaining > 0 else "exhausted", slo.measured_by)


def slo_report(prometheus_url: str, period: str, end: datetime | None = None,
               timeout: float = 30.0) -> list[SloStatus]:
    """Each SLO over `period` ending at `end` (default: now)."""
    check_period(period)
    end = end.astimezone(UTC) if end else None
    statuses = []
    with httpx.Client(timeout=timeout) as client:
        for slo in SLOS:
            # Events in the period: the SLI's denominator (a per-second rate) times its length.
            total = slo.total.replace(WINDOW, period)
            events = _query(client, prometheus_url,
                            f"({total}) * {_seconds(period)}", end)
            ratio = _query(client, prometheus_url, slo.ratio(period), end)
            statuses.append(_status(slo, period, events, ratio))
    return statuses


def _seconds(period: str) -> int:
    match = PERIOD.match(period)
    assert match
    return int(match.group(1)) * {"m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]


def _pct(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def format_report(statuses: list[SloStatus]) -> str:
    """A plain-text table for the terminal."""
    lines = [f"{'SLO':<18} {'objective':>9} {'events':>10} {'attainment':>11} "
             f"{'budget left':>11}  status"]
    for item in statuses:
        events = "-" if item.events is None else f"{item.events:.0f}"
        lines.append(f"{item.slo:<18} {_pct(item.objective, 1):>9} {events:>10} "
                     f"{_pct(item.attainment):>11} {_pct(item.budget_remaining, 1):>11}  "
                     f"{item.status}")
    return "\n".join(lines)
