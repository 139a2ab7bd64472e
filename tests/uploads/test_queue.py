"""Validation runs on the Huey queue (real PostgresHuey, real consumers), not in the API
process: it survives an API restart, and a worker that died mid-task is recovered."""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.modules.uploads import jobs, service
from server.settings import Settings
from server.worker.consumer import start_embedded_consumer, stop_embedded_consumer
from server.worker.queue import get_queue
from tests.uploads.conftest import API, add_catalog, multipart
from tests.uploads.waiting import settled

CSV = b"ID,Salary\nE1,100\nE2,200\nE3,300\n"
MAPPING = {"employee_ref": "ID", "base_salary": "Salary"}


def _tenant(make_tenant, database):
    tenant = make_tenant()
    add_catalog(database, tenant.id, [{"key": "base_salary", "dtype": "decimal"}])
    return tenant, tenant.users["hr"].headers


def _metadata(owner_conn, upload_id: str) -> dict:
    return owner_conn.execute("select metadata from comp.uploads where id = %s",
                              (upload_id,)).fetchone()[0]


def test_map_answers_before_validation_and_a_worker_validates(uc, make_tenant, database,
                                                              owner_conn) -> None:
    tenant, headers = _tenant(make_tenant, database)
    upload_id = multipart(uc, headers, CSV).json()["id"]
    mapped = uc.post_nowait(f"{API}/uploads/{upload_id}/map", headers=headers, json=MAPPING)
    assert mapped.status_code == 202 and mapped.json()["status"] == "processing"
    body = settled(uc, headers, upload_id)
    assert body["status"] == "ready" and body["rows"]["status"] == "filled"
    validation = _metadata(owner_conn, upload_id)["validation"]
    assert validation["attempts"] == 1 and validation["worker"]
    assert validation["user_id"] == str(tenant.users["hr"].id)


@pytest.fixture
def queue_settings(uploads_settings: Settings) -> Settings:
    """Same database and data directory as `uc`, a queue of its own (no consumer yet)."""
    return uploads_settings.model_copy(update={
        "queue_name": f"uploads-restart-{uuid.uuid4().hex[:8]}"})


def test_a_queued_validation_survives_an_api_restart(make_tenant, database, queue_settings
                                                     ) -> None:
    _, headers = _tenant(make_tenant, database)
    with TestClient(create_app(queue_settings)) as api:  # an API with no consumer at all
        upload_id = multipart(api, headers, CSV).json()["id"]
        mapped = api.post(f"{API}/uploads/{upload_id}/map", headers=headers, json=MAPPING)
        assert mapped.status_code == 202
        assert api.get(f"{API}/uploads/{upload_id}", headers=headers).json()["status"] == \
            "processing"
    assert get_queue(queue_settings).pending() >= 1  # the API is gone; the task is not
    consumer = start_embedded_consumer(queue_settings, workers=1, periodic=False)
    try:
        with TestClient(create_app(queue_settings)) as api:  # the API again
            body = settled(api, headers, upload_id)
    finally:
        stop_embedded_consumer(consumer)
    assert body["status"] == "ready" and body["rows"]["count"] == 3


def _orphan(owner_conn, upload_id: str, **metadata: object) -> None:
    """What a worker killed mid-validation leaves: `processing`, claimed, lock free."""
    owner_conn.execute(
        "update comp.uploads set status = 'processing', metadata = metadata || %s::jsonb "
        "where id = %s", (json.dumps(metadata), upload_id))


def test_an_interrupted_validation_is_queued_again_and_completes(
        uc, make_tenant, database, owner_conn, uploads_settings) -> None:
    tenant, headers = _tenant(make_tenant, database)
    upload_id = multipart(uc, headers, CSV).json()["id"]
    owner_conn.execute("update comp.uploads set mapping = %s::jsonb where id = %s",
                       (json.dumps(MAPPING), upload_id))
    _orphan(owner_conn, upload_id, phase="validating", validation={
        "attempts": 1, "worker": "gone:1", "user_id": str(tenant.users["hr"].id),
        "role": "hr"})
    handled = jobs.recover_interrupted_uploads(uploads_settings)
    assert uuid.UUID(upload_id) in handled
    body = settled(uc, headers, upload_id)
    assert body["status"] == "ready" and body["rows"]["status"] == "filled"
    assert _metadata(owner_conn, upload_id)["validation"]["attempts"] == 2
    audit = uc.get(f"{API}/audit", params={"entity_id": upload_id},
                   headers=tenant.users["admin"].headers).json()["items"]
    assert "upload.requeued" in [event["action"] for event in audit]


def test_a_validation_interrupted_too_often_fails_with_the_reason(
        uc, make_tenant, database, owner_conn, uploads_settings) -> None:
    tenant, headers = _tenant(make_tenant, database)
    upload_id = multipart(uc, headers, CSV).json()["id"]
    _orphan(owner_conn, upload_id, phase="validating", validation={
        "attempts": jobs.MAX_ATTEMPTS, "worker": "gone:2",
        "user_id": str(tenant.users["hr"].id), "role": "hr"})
    jobs.recover_interrupted_uploads(uploads_settings)
    body = uc.get(f"{API}/uploads/{upload_id}", headers=headers).json()
    assert body["status"] == "failed"
    assert "interrupted 3 times" in body["error"] and "gone:2" in body["error"]


def test_a_live_workers_validation_is_left_alone(uc, make_tenant, database, owner_conn,
                                                 uploads_settings) -> None:
    tenant, headers = _tenant(make_tenant, database)
    upload_id = multipart(uc, headers, CSV).json()["id"]
    _orphan(owner_conn, upload_id, phase="validating", validation={
        "attempts": 1, "worker": "alive:1", "user_id": str(tenant.users["hr"].id),
        "role": "hr"})
    with jobs.upload_lock(uploads_settings, uuid.UUID(upload_id)) as held:
        assert held
        assert uuid.UUID(upload_id) not in jobs.recover_interrupted_uploads(uploads_settings)
    assert uc.get(f"{API}/uploads/{upload_id}", headers=headers).json()["status"] == \
        "processing"


def test_rows_left_filling_by_a_dead_worker_are_filled(uc, make_tenant, database, owner_conn,
                                                       uploads_settings) -> None:
    tenant, headers = _tenant(make_tenant, database)
    upload_id = multipart(uc, headers, CSV).json()["id"]
    # Validate with no fill: the upload is ready, its rows queued in the spool.
    consumerless = uploads_settings.model_copy(update={
        "queue_name": f"uploads-nofill-{uuid.uuid4().hex[:8]}"})
    with TestClient(create_app(consumerless)) as api:
        assert api.post(f"{API}/uploads/{upload_id}/map", headers=headers,
                        json=MAPPING).status_code == 202
    principal = jobs._principal(str(tenant.id), str(tenant.users["hr"].id), "hr")
    service.process_upload(uploads_settings, principal, uuid.UUID(upload_id))
    owner_conn.execute("update comp.uploads set metadata = jsonb_set(metadata, "
                       "'{rows,status}', '\"filling\"') where id = %s", (upload_id,))
    assert uuid.UUID(upload_id) in jobs.recover_interrupted_uploads(uploads_settings)
    body = settled(uc, headers, upload_id)
    assert body["rows"]["status"] == "filled" and body["rows"]["count"] == 3


def test_a_validation_whose_file_vanished_fails_naming_it(make_tenant, database,
                                                          uploads_settings) -> None:
    tenant, headers = _tenant(make_tenant, database)
    consumerless = uploads_settings.model_copy(update={
        "queue_name": f"uploads-vanish-{uuid.uuid4().hex[:8]}"})
    with TestClient(create_app(consumerless)) as api:
        upload_id = multipart(api, headers, CSV).json()["id"]
        assert api.post(f"{API}/uploads/{upload_id}/map", headers=headers,
                        json=MAPPING).status_code == 202
        service.file_path(uploads_settings, tenant.id, uuid.UUID(upload_id)).unlink()
        jobs.validate_upload(tenant.id, uuid.UUID(upload_id), uploads_settings)
        body = api.get(f"{API}/uploads/{upload_id}", headers=headers).json()
    assert body["status"] == "failed"
    assert upload_id in body["error"] and "uploaded file is missing" in body["error"]
