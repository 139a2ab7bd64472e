"""The queue knows task names; `server/worker/tasks.py` binds them (one line per task).

On a real RedisHuey (its own queue name per test): every name of TASKS and PERIODIC is bound
on a queue built after `register_all()`, an enqueued task carries its name and
the two ids, an unknown name is refused saying where to register it, and a name cannot be
bound to two handlers.
"""

from __future__ import annotations

import uuid

import pytest

from server.settings import Settings
from server.worker import queue, tasks


@pytest.fixture
def redis_settings(settings: Settings, redis_url: str) -> Settings:
    return settings.model_copy(update={
        "redis_url": redis_url, "queue_name": f"registry-{uuid.uuid4().hex[:8]}",
    })


def test_every_task_of_the_table_is_bound_and_enqueues_by_name(redis_settings: Settings):
    tasks.register_all()
    tasks.register_all()  # idempotent: the API and a consumer may both call it
    jobs = queue.get_queue(redis_settings)
    try:
        assert set(jobs.tasks) == set(tasks.TASKS) | set(tasks.PERIODIC)
        assert {queue.EXECUTE_RUN, queue.RENDER_STATEMENTS} <= set(tasks.TASKS)
        tenant_id, job_id = uuid.uuid4(), uuid.uuid4()
        jobs.enqueue(queue.RENDER_STATEMENTS, tenant_id, job_id)
        assert jobs.pending() == 1
        [task] = jobs.huey.pending()
        assert task.name == queue.RENDER_STATEMENTS
        assert task.args == (str(tenant_id), str(job_id))
    finally:
        jobs.huey.flush()


def test_an_unregistered_name_is_refused_saying_where_to_register_it(redis_settings: Settings):
    jobs = queue.get_queue(redis_settings)
    with pytest.raises(RuntimeError, match=r"'uploads\.nothing'.*server/worker/tasks\.py"):
        jobs.enqueue("uploads.nothing", uuid.uuid4(), uuid.uuid4())
    assert jobs.pending() == 0


def test_a_name_bound_to_two_handlers_is_refused():
    name = f"test.twice-{uuid.uuid4().hex[:8]}"

    def first(tenant_id: uuid.UUID, object_id: uuid.UUID, settings: Settings) -> None:
        return None

    def second(tenant_id: uuid.UUID, object_id: uuid.UUID, settings: Settings) -> None:
        return None

    try:
        queue.register(name, first)
        queue.register(name, first)  # the same binding again is fine
        with pytest.raises(RuntimeError, match="registered twice"):
            queue.register(name, second)
    finally:
        queue._handlers.pop(name, None)  # keep the process-wide table as the app has it
