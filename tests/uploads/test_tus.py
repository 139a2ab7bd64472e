"""tus 1.0: discovery, creation, offsets, checksums, termination, resume after a drop."""

from __future__ import annotations

import base64
import hashlib
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from tests.uploads.conftest import API, TUS, tus_create, tus_metadata, tus_patch, tus_upload
from tests.uploads.server_process import api_server

CSV = b"employee_ref,base_salary\n" + b"".join(
    f"E{i:05d},{1000 + i}.25\n".encode() for i in range(3000))


def test_options_advertise_the_protocol(uc) -> None:
    response = uc.options(f"{API}/uploads")
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation", "termination", "checksum"}
    assert int(response.headers["Tus-Max-Size"]) == 1024 ** 3
    assert "sha256" in response.headers["Tus-Checksum-Algorithm"]


def test_chunked_upload_stores_the_exact_bytes(uc, make_tenant, uploads_settings) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    upload_id = tus_upload(uc, headers, CSV, chunk=10_000)
    body = uc.get(f"{API}/uploads/{upload_id}", headers=headers).json()
    assert body["sha256"] == hashlib.sha256(CSV).hexdigest()
    assert body["received_bytes"] == len(CSV) and body["phase"] == "uploaded"
    stored = uploads_settings.data_dir / "uploads" / str(tenant.id) / f"{upload_id}.bin"
    assert stored.read_bytes() == CSV


def test_head_reports_offset_and_wrong_offset_is_409(uc, make_tenant) -> None:
    headers = make_tenant().users["hr"].headers
    location = tus_create(uc, headers, len(CSV))
    assert tus_patch(uc, headers, location, 0, CSV[:5000]).status_code == 204
    head = uc.head(location, headers={**headers, **TUS})
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == "5000"
    assert head.headers["Upload-Length"] == str(len(CSV))
    conflict = tus_patch(uc, headers, location, 4000, CSV[4000:6000])
    assert conflict.status_code == 409
    assert conflict.headers["Upload-Offset"] == "5000"
    assert uc.head(location, headers={**headers, **TUS}).headers["Upload-Offset"] == "5000"


@pytest.mark.parametrize("offset", ["-1", "abc", "1e3"])
def test_bad_offset_is_400_naming_the_header(uc, make_tenant, offset) -> None:
    headers = make_tenant().users["hr"].headers
    location = tus_create(uc, headers, 100)
    response = uc.patch(location, content=b"x", headers={
        **headers, **TUS, "Upload-Offset": offset,
        "Content-Type": "application/offset+octet-stream"})
    assert response.status_code == 400
    assert "Upload-Offset must be a non-negative integer" in response.json()["detail"]
    assert uc.head(location, headers={**headers, **TUS}).headers["Upload-Offset"] == "0"


def test_length_over_the_limit_is_413_and_creates_nothing(uc, make_tenant) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    kept = tus_upload(uc, headers, CSV)
    response = uc.post(f"{API}/uploads", headers={
        **headers, **TUS, "Upload-Length": str(2 * 1024 ** 3),
        "Upload-Metadata": tus_metadata(filename="huge.csv")})
    assert response.status_code == 413
    assert "limit is 1073741824 bytes" in response.json()["detail"]
    items = uc.get(f"{API}/uploads", headers=headers).json()["items"]
    assert [item["id"] for item in items] == [kept]
    assert items[0]["sha256"] == hashlib.sha256(CSV).hexdigest()


def test_tenant_metadata_lowers_the_limit(uc, make_tenant, owner_conn) -> None:
    tenant = make_tenant()
    owner_conn.execute("update comp.tenants set metadata = '{\"upload_limit_bytes\": 1000}' "
                       "where id = %s", (tenant.id,))
    response = uc.post(f"{API}/uploads", headers={
        **tenant.users["hr"].headers, **TUS, "Upload-Length": "1001"})
    assert response.status_code == 413


def test_body_beyond_upload_length_is_refused(uc, make_tenant) -> None:
    headers = make_tenant().users["hr"].headers
    location = tus_create(uc, headers, 10)
    response = tus_patch(uc, headers, location, 0, b"a,b\n1,2\n3,4\n")
    assert response.status_code == 400
    assert uc.head(location, headers={**headers, **TUS}).headers["Upload-Offset"] == "0"


def test_checksum_mismatch_discards_the_chunk(uc, make_tenant) -> None:
    headers = make_tenant().users["hr"].headers
    location = tus_create(uc, headers, len(CSV))
    assert tus_patch(uc, headers, location, 0, CSV[:1000], checksum=True).status_code == 204
    wrong = "sha256 " + base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    response = uc.patch(location, content=CSV[1000:2000], headers={
        **headers, **TUS, "Upload-Offset": "1000", "Upload-Checksum": wrong,
        "Content-Type": "application/offset+octet-stream"})
    assert response.status_code == 460
    assert uc.head(location, headers={**headers, **TUS}).headers["Upload-Offset"] == "1000"
    assert tus_patch(uc, headers, location, 1000, CSV[1000:], checksum=True).status_code == 204
    upload_id = location.rsplit("/", 1)[1]
    body = uc.get(f"{API}/uploads/{upload_id}", headers=headers).json()
    assert body["sha256"] == hashlib.sha256(CSV).hexdigest()


def test_missing_tus_version_is_412(uc, make_tenant) -> None:
    headers = make_tenant().users["hr"].headers
    location = tus_create(uc, headers, 100)
    response = uc.patch(location, content=b"x", headers={
        **headers, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert response.status_code == 412


def test_termination_deletes_file_and_row(uc, make_tenant, uploads_settings) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    upload_id = tus_upload(uc, headers, CSV)
    stored = uploads_settings.data_dir / "uploads" / str(tenant.id) / f"{upload_id}.bin"
    assert stored.exists()
    assert uc.delete(f"{API}/uploads/{upload_id}", headers={**headers, **TUS}).status_code == 204
    assert not stored.exists()
    assert uc.get(f"{API}/uploads/{upload_id}", headers=headers).status_code == 404
    audit = uc.get(f"{API}/audit", params={"entity_id": upload_id},
                   headers=tenant.users["admin"].headers).json()["items"]
    assert [e["action"] for e in audit] == ["upload.delete", "upload.complete", "upload.create"]


def test_readonly_role_cannot_upload(uc, make_tenant) -> None:
    headers = make_tenant().users["readonly"].headers
    response = uc.post(f"{API}/uploads", headers={**headers, **TUS, "Upload-Length": "10"})
    assert response.status_code == 403


def _drop_mid_chunk(base: str, path: str, token: str, offset: int, chunk: bytes,
                    sent: int) -> None:
    """Send a PATCH announcing `chunk` but only `sent` bytes of it, then drop the socket."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    head = (f"PATCH {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\n"
            f"Content-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {len(chunk)}\r\n\r\n").encode()
    with socket.create_connection((host, port)) as sock:
        sock.sendall(head + chunk[:sent])
        sock.shutdown(socket.SHUT_RDWR)


def test_resume_after_connection_drop_mid_chunk(make_tenant, database, uploads_settings,
                                                tmp_path) -> None:
    """A real server: the connection dies mid-chunk, HEAD gives the offset, the client
    resumes from there, and the stored file's SHA-256 equals the original's."""
    tenant = make_tenant()
    user = tenant.users["hr"]
    data = CSV + "".join(f"É{i},{i}.5 €\n" for i in range(120_000)).encode()  # ~2 MB
    env = {"DATABASE_URL": database.app, "DATA_DIR": str(tmp_path), "LOG_LEVEL": "WARNING",
           "RATE_LIMIT_PER_MINUTE": "100000", "RATE_LIMIT_BURST": "100000"}
    with api_server(env) as (base, _), httpx.Client(base_url=base, headers=user.headers,
                                                      timeout=60) as client:
        created = client.post(f"{API}/uploads", headers={
            **TUS, "Upload-Length": str(len(data)), "Upload-Metadata": tus_metadata(
                filename="big.bin.csv")})
        assert created.status_code == 201, created.text
        location = created.headers["Location"]
        first = 1024 * 1024
        response = client.patch(location, content=data[:first], headers={
            **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        assert response.status_code == 204
        _drop_mid_chunk(base, location, user.token, first, data[first:], 512 * 1024)
        offset = None
        for _attempt in range(10_000):  # what a tus client does: HEAD, PATCH, retry on 409/423
            offset = int(client.head(location, headers=TUS).headers["Upload-Offset"])
            assert first <= offset <= first + 512 * 1024
            response = client.patch(location, content=data[offset:], headers={
                **TUS, "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream"})
            if response.status_code not in (409, 423):
                break
        assert response.status_code == 204, response.text
        upload_id = location.rsplit("/", 1)[1]
        stored = tmp_path / "uploads" / str(tenant.id) / f"{upload_id}.bin"
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
        body = client.get(f"{API}/uploads/{upload_id}").json()
        assert body["sha256"] == hashlib.sha256(data).hexdigest()
