"""Prometheus metrics of runs: duration, throughput, failures by step (the queue's depth is
`server.observability.metrics.QUEUE_DEPTH`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
for _outcome in ("completed", "failed"):  # both series exist from the start (rate() of 0)
    RUNS_FINISHED.labels(_outcome)


def observe_completed(rows: int, seconds: float) -> None:
    RUN_DURATION.observe(seconds)
    if seconds > 0:
        RUN_ROWS_PER_SECOND.observe(rows / seconds)
    RUNS_FINISHED.labels("completed").inc()
