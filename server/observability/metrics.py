"""Prometheus metrics (process-wide registry, so several app instances can share them).

With several API processes (`paysheet serve --workers N`), `serve` points
PROMETHEUS_MULTIPROC_DIR at a fresh directory before starting them: every process writes its
samples there and any of them answers /metrics with the union, so one scrape sees the whole
server (process_* collectors are then not exported: they describe one process only).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

REQUEST_LATENCY = Histogram(
    "paysheet_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route", "status"],
    # 0.3: the PRD's API latency objective (P95 < 300 ms) is measured at this bucket.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0),
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


def sample_queue_depth(pending: Callable[[], int], interval: float = 2.0) -> threading.Thread:
    """Multiprocess mode (`paysheet worker --metrics-port`) serves only values written to
    the shared files, which `set_function` never does: a daemon thread writes the queue's
    length every `interval` seconds instead."""

    def loop() -> None:
        while True:
            try:
                QUEUE_DEPTH.set(float(pending()))
            except Exception:
                QUEUE_DEPTH.set(float("nan"))
            time.sleep(interval)

    thread = threading.Thread(target=loop, name="queue-depth", daemon=True)
    thread.start()
    return thread


def render_latest() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
