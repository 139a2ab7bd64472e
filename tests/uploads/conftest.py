"""Uploads fixtures: an app whose data directory is a temp dir, tus helpers, catalog rows."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.settings import Settings

API = "/api/v1"
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture(scope="session")
def uploads_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("paysheet-data")})


@pytest.fixture(scope="session")
def uc(uploads_settings: Settings) -> Iterator[TestClient]:
    """Test client of an app storing uploads in a temp data directory."""
    with TestClient(create_app(uploads_settings)) as client:
        yield client


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
