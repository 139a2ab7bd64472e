"""Uploads fixtures: an app whose data directory is a temp dir, tus helpers, catalog rows."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.settings import Settings
from server.worker.consumer import start_embedded_consumer, stop_embedded_consumer
from tests.uploads.waiting import settled

API = "/api/v1"
TUS = {"Tus-Resumable": "1.0.0"}


QUEUED_WORK = re.compile(r"/uploads/([0-9a-f-]{36})/(map|rows)$")


@pytest.fixture(scope="session")
def uploads_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings.model_copy(update={
        "data_dir": tmp_path_factory.mktemp("paysheet-data"),
        "queue_name": f"uploads-test-{uuid.uuid4().hex[:8]}"})


class SettlingClient(TestClient):
    """Validation and the rows fill are queue tasks (uploads.jobs), run here by a real
    in-process consumer. Most upload tests check the settled outcome, so a 202 from
    `POST /uploads/{id}/map` or `/rows` returns once the upload has settled; tests of the
    queue itself use `post_nowait`."""

    def post(self, url: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().post(url, *args, **kwargs)
        queued = QUEUED_WORK.search(str(url))
        if queued and response.status_code == 202:
            settled(self, kwargs.get("headers") or {}, queued.group(1))
        return response

    def post_nowait(self, url: Any, *args: Any, **kwargs: Any) -> Any:
        return super().post(url, *args, **kwargs)


@pytest.fixture(scope="session")
def uc(uploads_settings: Settings) -> Iterator[SettlingClient]:
    """Test client of an app storing uploads in a temp data directory, with a queue
    consumer (thread workers, as `paysheet serve` runs them)."""
    with SettlingClient(create_app(uploads_settings)) as client:
        consumer = start_embedded_consumer(uploads_settings, workers=2, periodic=False)
        try:
            yield client
        finally:
            stop_embedded_consumer(consumer)


def tus_metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def tus_create(client: TestClient, headers: dict, length: int, filename: str = "data.csv",
               kind: str = "employees") -> str:
    response = client.post(f"{API}/uploads", headers={
        **headers, **TUS, "Upload-Length": str(length),
        "Upload-Metadata": tus_metadata(filename=filename, kind=kind)})
    assert response.status_code == 201, response.text
    return response.headers["Location"]


def tus_patch(client: TestClient, headers: dict, location: str, offset: int, data: bytes,
              checksum: bool = False):
    extra = {}
    if checksum:
        extra["Upload-Checksum"] = "sha256 " + base64.b64encode(
            hashlib.sha256(data).digest()).decode()
    return client.patch(location, content=data, headers={
        **headers, **TUS, "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream", **extra})


def tus_upload(client: TestClient, headers: dict, data: bytes, filename: str = "data.csv",
               kind: str = "employees", chunk: int = 64 * 1024) -> str:
    """Upload `data` in chunks; returns the upload id. Asserts every PATCH but the last."""
    location = tus_create(client, headers, len(data), filename, kind)
    offset = 0
    while offset < len(data):
        response = tus_patch(client, headers, location, offset, data[offset:offset + chunk])
        offset += len(data[offset:offset + chunk])
        if offset < len(data):
            assert response.status_code == 204, response.text
    assert response.status_code in (204, 422), response.text
    return location.rsplit("/", 1)[1]


def multipart(client: TestClient, headers: dict, data: bytes, filename: str = "data.csv",
              kind: str = "employees"):
    return client.post(f"{API}/uploads", headers=headers,
                       files={"file": (filename, data, "text/csv")}, data={"kind": kind})


def add_catalog(database_urls, tenant_id, entries: list[dict]) -> None:
    """Catalog rows for a tenant (as the owner role; tests only)."""
    with psycopg.connect(database_urls.migrate, autocommit=True) as conn:
        conn.execute("set role paysheet_owner")
        for entry in entries:
            conn.execute(
                "insert into comp.input_catalog (tenant_id, key, label, dtype, scope, required, "
                "validation) values (%s, %s, %s, %s, %s, %s, %s)",
                (tenant_id, entry["key"], entry.get("label", entry["key"]), entry["dtype"],
                 entry.get("scope", "employee"), entry.get("required", True),
                 json.dumps(entry.get("validation", {}))))


def write(path: Path, text: str) -> bytes:
    data = text.encode()
    path.write_bytes(data)
    return data
