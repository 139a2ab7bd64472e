"""GET /ops/slo: each SLO's attainment and remaining error budget over a period (admins)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request

from server.modules.auth.dependencies import Principal, require
from server.modules.ops import service
from server.modules.ops.schemas import SloReportOut

router = APIRouter(tags=["ops"])


@router.get("/ops/slo", response_model=SloReportOut)
def slo_report(request: Request, period: str = Query("30d", max_length=8),
               end: datetime | None = Query(None),
               principal: Principal = Depends(require("ops.slo.read"))) -> dict:
    """Error-budget report read from Prometheus (PROMETHEUS_URL); 503 when unreachable."""
    return service.report(request.app.state.settings, period, end)
