"""The job queue: Huey on Redis when REDIS_URL is set, else on the application's PostgreSQL.

The queue knows task NAMES, never the modules that run them, so any area can enqueue work
without the queue importing that area (and without an import cycle back to it):

    get_queue(settings).enqueue(queue.EXECUTE_RUN, tenant_id, run_id)

The handlers are bound to the names from the top, in `server/worker/tasks.py` (as
`server/app.py` includes every router): the API (`create_app`) and every consumer call
`server.worker.tasks.register_all()` before they enqueue or consume.

Adding a queued task takes two lines:
1. its name here, next to the others (`VALIDATE_UPLOAD = "uploads.validate"`);
2. one entry in `TASKS` of `server/worker/tasks.py`: `queue.VALIDATE_UPLOAD: validate_upload,`
   where the handler is `handler(tenant_id: UUID, object_id: UUID, settings: Settings)`.
A task carries only a tenant id and one object id: everything else is read from the database.
Periodic tasks (`PERIODIC` in tasks.py) are `handler(settings)` on a crontab schedule.

PostgresHuey uses the tables of schema `queue` (migration 0020), so the app role needs no
CREATE privilege; RedisHuey uses keys prefixed by `settings.queue_name`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from threading import Lock

from huey import Huey, PostgresHuey, RedisHuey
from huey.api import TaskWrapper

from server.db import session as db
from server.settings import Settings

EXECUTE_RUN = "runs.execute"
RECOVER_RUNS = "runs.recover"
RENDER_STATEMENTS = "reports.statements"
VALIDATE_UPLOAD = "uploads.validate"
FILL_UPLOAD_ROWS = "uploads.fill_rows"
RECOVER_UPLOADS = "uploads.recover"
# (retries, seconds between): a task that could not even start (no database connection to
# be had) is tried again; these tasks are idempotent.
RETRIES: dict[str, tuple[int, int]] = {VALIDATE_UPLOAD: (5, 2), FILL_UPLOAD_ROWS: (5, 2)}
EXPORT_BUNDLE = "reports.export"
DELIVER_STATEMENTS = "reports.delivery"
RECOVER_REPORT_JOBS = "reports.recover"

TaskHandler = Callable[[uuid.UUID, uuid.UUID, Settings], object]
PeriodicHandler = Callable[[Settings], object]
Schedule = Callable[..., bool]  # a huey crontab(...)


@dataclass
class JobQueue:
    """One Huey instance with every registered task bound to it, for one set of settings."""

    huey: Huey
    settings: Settings
    tasks: dict[str, TaskWrapper] = field(default_factory=dict)

    def enqueue(self, name: str, tenant_id: uuid.UUID, object_id: uuid.UUID) -> None:
        """Queue task `name` for (tenant, object); a name nobody registered is an error."""
        task = self.tasks.get(name)
        if task is None:
            raise RuntimeError(
                f"no queued task named {name!r} is registered "
                "(add it to TASKS in server/worker/tasks.py)"
            )
        task(str(tenant_id), str(object_id))

    def enqueue_run(self, tenant_id: uuid.UUID, run_id: uuid.UUID) -> None:
        self.enqueue(EXECUTE_RUN, tenant_id, run_id)

    def pending(self) -> int:
        return self.huey.pending_count()


@dataclass(frozen=True)
class _Periodic:
    schedule: Schedule
    handler: PeriodicHandler


_handlers: dict[str, TaskHandler] = {}
_periodic: dict[str, _Periodic] = {}
_queues: dict[tuple[str | None, str | None, str], JobQueue] = {}
_lock = Lock()


def build_huey(settings: Settings) -> Huey:
    """RedisHuey (REDIS_URL) or PostgresHuey on DATABASE_URL, named `settings.queue_name`."""
    if settings.redis_url:
        return RedisHuey(settings.queue_name, url=settings.redis_url)
    if not settings.database_url:
        raise RuntimeError("the run queue needs REDIS_URL or DATABASE_URL")
    return PostgresHuey(settings.queue_name, dsn=settings.database_url, table_prefix="huey",
                        create_tables=False, options="-c search_path=queue")


def _bind_task(queue: JobQueue, name: str, handler: TaskHandler) -> None:
    settings = queue.settings

    retries, delay = RETRIES.get(name, (0, 0))

    @queue.huey.task(name=name, retries=retries, retry_delay=delay)
    def task(tenant_id: str, object_id: str) -> None:
        handler(uuid.UUID(tenant_id), uuid.UUID(object_id), settings)

    queue.tasks[name] = task


def _bind_periodic(queue: JobQueue, name: str, periodic: _Periodic) -> None:
    settings = queue.settings

    @queue.huey.periodic_task(periodic.schedule, name=name)
    def task() -> None:
        periodic.handler(settings)

    queue.tasks[name] = task


def register(name: str, handler: TaskHandler) -> None:
    """Bind `name` to `handler` in this process (idempotent; queues built earlier get it too)."""
    with _lock:
        if _handlers.get(name) is handler:
            return
        if name in _handlers or name in _periodic:
            raise RuntimeError(f"queued task {name!r} is registered twice")
        _handlers[name] = handler
        for queue in _queues.values():
            _bind_task(queue, name, handler)


def register_periodic(name: str, schedule: Schedule, handler: PeriodicHandler) -> None:
    """Run `handler(settings)` on `schedule` (a huey crontab) in every consumer."""
    with _lock:
        existing = _periodic.get(name)
        if existing is not None and existing.handler is handler:
            return
        if existing is not None or name in _handlers:
            raise RuntimeError(f"queued task {name!r} is registered twice")
        _periodic[name] = _Periodic(schedule, handler)
        for queue in _queues.values():
            _bind_periodic(queue, name, _periodic[name])


def _build(settings: Settings) -> JobQueue:
    huey = build_huey(settings)
    parent_pid = os.getpid()

    @huey.on_startup()
    def _fresh_connections_after_fork() -> None:
        """A forked worker must not reuse the parent's pooled database connections."""
        if os.getpid() != parent_pid:
            db.configure(settings).dispose(close=False)

    queue = JobQueue(huey, settings)
    for name, handler in _handlers.items():
        _bind_task(queue, name, handler)
    for name, periodic in _periodic.items():
        _bind_periodic(queue, name, periodic)
    return queue


def get_queue(settings: Settings) -> JobQueue:
    """The queue for these settings, built once per process with every registered task."""
    key = (settings.redis_url, settings.database_url, settings.queue_name)
    with _lock:
        if key not in _queues:
            from server.observability.metrics import track_queue_depth  # loads prometheus

            _queues[key] = _build(settings)
            track_queue_depth(_queues[key].pending)
        return _queues[key]
