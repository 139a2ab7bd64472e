"""Prometheus metrics of runs: duration, throughput, failures by step, queue depth."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

RUN_DURATION = Histogram(
    "paysheet_run_duration_seconds",
    "Run execution time, claim to committed results",
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300),
)
RUN_ROWS_PER_SECOND = Histogram(
    "paysheet_run_rows_per_second",
    "Employees evaluated and persisted per second, per run",
    buckets=(1e3, 5e3, 1e4, 2.5e4, 5e4, 1e5, 2.5e5, 5e5, 1e6),
)
RUNS_FINISHED = Counter("paysheet_runs_finished_total", "Runs finished, by outcome", ["outcome"])
STEP_FAILURES = Counter(
    "paysheet_run_step_failures_total", "Runs failed by a step (overflow), by step", ["step"]
)
QUEUE_DEPTH = Gauge("paysheet_run_queue_depth", "Tasks waiting in the run queue",
                    multiprocess_mode="livemax")
for _outcome in ("completed", "failed"):  # both series exist from the start (rate() of 0)
    RUNS_FINISHED.labels(_outcome)


def observe_completed(rows: int, seconds: float) -> None:
    RUN_DURATION.observe(seconds)
    if seconds > 0:
        RUN_ROWS_PER_SECOND.observe(rows / seconds)
    RUNS_FINISHED.labels("completed").inc()


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
