"""Response shapes of the ops endpoints."""

from __future__ import annotations

from pydantic import BaseModel


class SloStatusOut(BaseModel):
    slo: str
    title: str
    objective: float
    period: str
    events: float | None
    error_ratio: float | None
    attainment: float | None
    budget_remaining: float | None
    status: str
    measured_by: str


class SloReportOut(BaseModel):
    period: str
    end: str | None
    prometheus_url: str
    items: list[SloStatusOut]
