"""Prometheus metrics (process-wide registry, so several app instances can share them)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest

REQUEST_LATENCY = Histogram(
    "paysheet_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def render_latest() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
