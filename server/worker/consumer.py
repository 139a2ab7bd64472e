"""Consumers: `paysheet worker` (process workers) and the in-process one of `paysheet serve`.

Both first recover runs left `running` by a dead worker (see runs.execution) and uploads
whose validation or rows fill a dead worker held (see uploads.jobs); the periodic
`runs.recover` and `uploads.recover` tasks repeat that every minute.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

import structlog
from huey.consumer import Consumer

from server.db import session as db
from server.settings import Settings
from server.worker.queue import JobQueue, get_queue

log = structlog.get_logger("paysheet.worker")


def _registered_tasks() -> ModuleType:
    """server.worker.tasks, imported only when needed: it loads the areas and, with them,
    prometheus_client, which `serve_worker_metrics` must configure first."""
    from server.worker import tasks

    tasks.register_all()
    return tasks


def recover(queue: JobQueue) -> None:
    tasks = _registered_tasks()
    handled = tasks.recover_runs(queue.settings)
    if handled:
        log.info("runs_recovered", runs=[str(run_id) for run_id in handled])
    tasks.recover_uploads(queue.settings)


def serve_worker_metrics(port: int) -> None:
    """Prometheus multiprocess mode: each worker process writes its samples to files under
    PROMETHEUS_MULTIPROC_DIR, and this (the consumer's main) process serves their union on
    `port`. Must run before anything imports prometheus_client."""
    if "prometheus_client" in sys.modules and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        raise RuntimeError("worker metrics must be set up before prometheus_client is loaded")
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                          tempfile.mkdtemp(prefix="paysheet-worker-metrics-"))
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(port, registry=registry)


def run_worker(settings: Settings, workers: int | None = None,
               worker_type: str = "process", metrics_port: int | None = None) -> None:
    """Block running a Huey consumer (Ctrl-C / SIGINT stops it gracefully); with
    `metrics_port`, serve the workers' run metrics there (GET /metrics)."""
    if metrics_port is not None:
        serve_worker_metrics(metrics_port)
    logging.basicConfig(level=settings.log_level)
    db.configure(settings)
    _registered_tasks()
    queue = get_queue(settings)
    recover(queue)
    if metrics_port is not None:
        from server.observability.metrics import sample_queue_depth
        from server.worker.queue import build_huey

        # Its own storage (connection pool): the thread must never hold a lock of the pool
        # that forked worker processes inherit.
        sample_queue_depth(build_huey(settings).pending_count)
    db.release_connections()  # forked workers open their own
    consumer = queue.huey.create_consumer(workers=workers or settings.worker_processes,
                                          worker_type=worker_type, periodic=True,
                                          initial_delay=0.05, max_delay=1.0)
    consumer.run()


class EmbeddedConsumer(Consumer):
    """A thread consumer living inside another process (the API server): no signal
    handlers, since those belong to the host process's main thread."""

    def _set_signal_handlers(self) -> None:
        return None


def embedded_worker_count(settings: Settings, embedded_database: bool) -> int:
    """EMBEDDED_WORKERS if set; else 1 with the embedded database, 0 with an external one
    (where `paysheet worker` processes do the work)."""
    if settings.embedded_workers is not None:
        return settings.embedded_workers
    return 1 if embedded_database else 0


@contextmanager
def in_process_consumer(settings: Settings, embedded_database: bool) -> Iterator[None]:
    """`paysheet serve`'s hook: worker threads next to the API while it runs."""
    count = embedded_worker_count(settings, embedded_database)
    consumer = start_embedded_consumer(settings, count)
    try:
        yield
    finally:
        stop_embedded_consumer(consumer)


def start_embedded_consumer(settings: Settings, workers: int | None = None,
                            periodic: bool = True) -> EmbeddedConsumer | None:
    """Start `workers` (default EMBEDDED_WORKERS, else 1) worker threads in this process;
    None when that is 0. Interrupted runs are recovered once at start and, with `periodic`,
    every minute (database-wide: in production every consumer shares one queue)."""
    workers = workers if workers is not None else (settings.embedded_workers or 1)
    if workers <= 0:
        return None
    _registered_tasks()
    queue = get_queue(settings)
    recover(queue)
    consumer = EmbeddedConsumer(queue.huey, workers=workers,
                                worker_type="thread", periodic=periodic,
                                initial_delay=0.05, max_delay=1.0,
                                shutdown_timeout=settings.shutdown_grace_seconds)
    consumer.start()
    return consumer


def stop_embedded_consumer(consumer: EmbeddedConsumer | None) -> None:
    if consumer is not None:
        consumer.stop(graceful=True)
