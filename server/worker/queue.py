"""The job queue: Huey on Redis when REDIS_URL is set, else on the application's PostgreSQL.

`get_queue(settings)` returns the process's queue for those settings (built once), with the
run tasks registered. PostgresHuey uses the tables of schema `queue` (migration 0020), so the
app role needs no CREATE privilege; RedisHuey uses keys prefixed by `settings.queue_name`.
A task carries only a tenant id and a run id: everything else is read from the database.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from threading import Lock

from huey import Huey, PostgresHuey, RedisHuey, crontab
from huey.api import TaskWrapper

from server.settings import Settings

EXECUTE_RUN = "runs.execute"
RECOVER_RUNS = "runs.recover"


@dataclass
class RunQueue:
    huey: Huey
    execute: TaskWrapper
    recover: TaskWrapper
    settings: Settings

    def enqueue_run(self, tenant_id: uuid.UUID, run_id: uuid.UUID) -> None:
        self.execute(str(tenant_id), str(run_id))

    def pending(self) -> int:
        return self.huey.pending_count()


def build_huey(settings: Settings) -> Huey:
    """RedisHuey (REDIS_URL) or PostgresHuey on DATABASE_URL, named `settings.queue_name`."""
    if settings.redis_url:
        return RedisHuey(settings.queue_name, url=settings.redis_url)
    if not settings.database_url:
        raise RuntimeError("the run queue needs REDIS_URL or DATABASE_URL")
    return PostgresHuey(settings.queue_name, dsn=settings.database_url, table_prefix="huey",
                        create_tables=False, options="-c search_path=queue")


def _register(huey: Huey, settings: Settings) -> RunQueue:
    holder: dict[str, RunQueue] = {}
    parent_pid = os.getpid()

    @huey.on_startup()
    def _fresh_connections_after_fork() -> None:
        """A forked worker must not reuse the parent's pooled database connections."""
        if os.getpid() != parent_pid:
            from server.db import session as db

            db.configure(settings).dispose(close=False)

    @huey.task(name=EXECUTE_RUN)
    def execute_run(tenant_id: str, run_id: str) -> None:
        from server.modules.runs.execution import execute_run as run

        run(uuid.UUID(tenant_id), uuid.UUID(run_id), settings)

    @huey.periodic_task(crontab(minute="*"), name=RECOVER_RUNS)
    def recover_runs() -> None:
        from server.modules.runs.execution import recover_interrupted_runs

        recover_interrupted_runs(holder["queue"].enqueue_run, settings)

    from server.modules.reports.jobs import register_tasks as register_report_tasks
    from server.modules.uploads.jobs import register_tasks as register_upload_tasks

    register_report_tasks(huey, settings)
    register_upload_tasks(huey, settings)
    queue = RunQueue(huey, execute_run, recover_runs, settings)
    holder["queue"] = queue
    return queue


_queues: dict[tuple[str | None, str | None, str], RunQueue] = {}
_lock = Lock()


def get_queue(settings: Settings) -> RunQueue:
    """The queue for these settings, built and registered once per process."""
    key = (settings.redis_url, settings.database_url, settings.queue_name)
    with _lock:
        if key not in _queues:
            from server.modules.runs.metrics import track_queue_depth

            _queues[key] = _register(build_huey(settings), settings)
            track_queue_depth(_queues[key].pending)
        return _queues[key]
