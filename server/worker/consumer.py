"""Consumers: `paysheet worker` (process workers) and the in-process one of `paysheet serve`.

Both first recover runs left `running` by a dead worker (see runs.execution), and the
periodic `runs.recover` task repeats that every minute.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from huey.consumer import Consumer

from server.db import session as db
from server.settings import Settings
from server.worker.queue import RunQueue, get_queue

log = structlog.get_logger("paysheet.worker")


def recover(queue: RunQueue) -> None:
    from server.modules.runs.execution import recover_interrupted_runs

    handled = recover_interrupted_runs(queue.enqueue_run, queue.settings)
    if handled:
        log.info("runs_recovered", runs=[str(run_id) for run_id in handled])


def run_worker(settings: Settings, workers: int | None = None,
               worker_type: str = "process") -> None:
    """Block running a Huey consumer (Ctrl-C / SIGINT stops it gracefully)."""
    logging.basicConfig(level=settings.log_level)
    db.configure(settings)
    queue = get_queue(settings)
    recover(queue)
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


def start_embedded_consumer(settings: Settings,
                            workers: int | None = None) -> EmbeddedConsumer | None:
    """Start `workers` (default EMBEDDED_WORKERS, else 1) worker threads in this process;
    None when that is 0."""
    workers = workers if workers is not None else (settings.embedded_workers or 1)
    if workers <= 0:
        return None
    queue = get_queue(settings)
    recover(queue)
    consumer = EmbeddedConsumer(queue.huey, workers=workers,
                                worker_type="thread", periodic=True,
                                initial_delay=0.05, max_delay=1.0)
    consumer.start()
    return consumer


def stop_embedded_consumer(consumer: EmbeddedConsumer | None) -> None:
    if consumer is not None:
        consumer.stop(graceful=True)
