"""Prometheus metrics of exports (PRD SLO: export P95 < 30 s): signed bundles and statement
jobs, by kind and outcome."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Histogram

EXPORT_DURATION = Histogram(
    "paysheet_export_duration_seconds",
    "Export time (signed bundle, statements job), by kind and outcome",
    ["kind", "outcome"],
    buckets=(0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
)


@contextmanager
def timed_export(kind: str) -> Iterator[None]:
    """Observe the block's duration; outcome `failed` when it raises."""
    started = time.perf_counter()
    outcome = "failed"
    try:
        yield
        outcome = "done"
    finally:
        EXPORT_DURATION.labels(kind, outcome).observe(time.perf_counter() - started)
