"""Prometheus metrics (process-wide registry, so several app instances can share them)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, Gauge, Histogram, generate_latest

REQUEST_LATENCY = Histogram(
    "paysheet_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

QUEUE_DEPTH = Gauge("paysheet_run_queue_depth", "Tasks waiting in the run queue",
                    multiprocess_mode="livemax")


def track_queue_depth(pending: Callable[[], int]) -> None:
    """Make the gauge read the queue's length at scrape time."""

    def depth() -> float:
        try:
            return float(pending())
        except Exception:
            return float("nan")

    QUEUE_DEPTH.set_function(depth)


def render_latest() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
