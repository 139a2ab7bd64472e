"""Every queued task, bound to its name in one place (as `server/app.py` includes routers).

`server/worker/queue.py` knows only task names, so the areas that enqueue never import the
code that runs the task, and the queue never imports an area. `register_all()` is called by
every process that enqueues or consumes (`server.app.create_app`, `server.worker.consumer`);
it is idempotent.

To add a queued task: name it in `server/worker/queue.py`, then add ONE line to `TASKS` below,
`queue.THE_NAME: the_handler,` with `the_handler(tenant_id: UUID, object_id: UUID,
settings: Settings)` living in its area (e.g. `server/modules/uploads/...`). Enqueue it with
`get_queue(settings).enqueue(queue.THE_NAME, tenant_id, object_id)`.
"""

from __future__ import annotations

import uuid

from huey import crontab

from server.modules.reports import delivery, export_job
from server.modules.reports import jobs as report_jobs
from server.modules.runs import execution
from server.modules.uploads import jobs as upload_jobs
from server.settings import Settings
from server.worker import queue


def recover_runs(settings: Settings) -> list[uuid.UUID]:
    """Re-queue runs left `running` by a dead worker (at consumer start and every minute)."""
    run_queue = queue.get_queue(settings)
    return execution.recover_interrupted_runs(run_queue.enqueue_run, settings)


def recover_uploads(settings: Settings) -> list[uuid.UUID]:
    """Re-queue validations and rows fills a dead worker left (at consumer start and every
    minute)."""
    return upload_jobs.recover_interrupted_uploads(settings)


TASKS: dict[str, queue.TaskHandler] = {
    queue.EXECUTE_RUN: execution.execute_run,
    queue.RENDER_STATEMENTS: report_jobs.run_statements_job,
    queue.VALIDATE_UPLOAD: upload_jobs.validate_upload,
    queue.FILL_UPLOAD_ROWS: upload_jobs.fill_upload_rows,
    queue.EXPORT_BUNDLE: export_job.run_export_job,
    queue.DELIVER_STATEMENTS: delivery.run_delivery_job,
}

PERIODIC: dict[str, tuple[queue.Schedule, queue.PeriodicHandler]] = {
    queue.RECOVER_RUNS: (crontab(minute="*"), recover_runs),
    queue.RECOVER_UPLOADS: (crontab(minute="*"), recover_uploads),
    queue.RECOVER_REPORT_JOBS: (crontab(minute="*"), report_jobs.recover_report_jobs),
}


def register_all() -> None:
    """Bind every task above to its name in this process."""
    for name, handler in TASKS.items():
        queue.register(name, handler)
    for name, (schedule, periodic) in PERIODIC.items():
        queue.register_periodic(name, schedule, periodic)
