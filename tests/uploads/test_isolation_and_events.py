"""Another tenant's upload answers 404 everywhere; progress events over the WebSocket."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from starlette.websockets import WebSocketDisconnect

from server.progress import MemoryHub, RedisHub
from tests.uploads.conftest import API, TUS, add_catalog, multipart, tus_create, tus_upload

ROUTES = [
    ("HEAD", "/uploads/{id}", None),
    ("PATCH", "/uploads/{id}", b"x"),
    ("DELETE", "/uploads/{id}", None),
    ("GET", "/uploads/{id}", None),
    ("GET", "/uploads/{id}/preview", None),
    ("GET", "/uploads/{id}/mapping-suggestions", None),
    ("POST", "/uploads/{id}/map", {"employee_ref": "employee_ref"}),
    ("GET", "/uploads/{id}/validation", None),
    ("PATCH", "/mapping-presets/{preset}", {"name": "mine now"}),
    ("DELETE", "/mapping-presets/{preset}", None),
]


@pytest.fixture
def other_tenants_upload(uc, make_tenant):
    owner = make_tenant()
    headers = owner.users["hr"].headers
    upload_id = multipart(uc, headers, b"employee_ref,team\nE1,T1\n").json()["id"]
    uc.post(f"{API}/uploads/{upload_id}/map", headers=headers,
            json={"employee_ref": "employee_ref"}, params={"preset_name": "theirs"})
    preset = uc.get(f"{API}/mapping-presets", headers=headers).json()[0]["id"]
    return owner, upload_id, preset


@pytest.mark.parametrize(("method", "template", "body"), ROUTES)
def test_other_tenants_ids_answer_404(uc, make_tenant, other_tenants_upload, method,
                                      template, body) -> None:
    owner, upload_id, preset = other_tenants_upload
    intruder = make_tenant().users["admin"].headers
    path = API + template.format(id=upload_id, preset=preset)
    extra = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    if isinstance(body, bytes):
        response = uc.request(method, path, headers={**intruder, **extra}, content=body)
    else:
        response = uc.request(method, path, headers={**intruder, **TUS}, json=body)
    assert response.status_code == 404, response.text
    mine = owner.users["hr"].headers
    still = uc.get(f"{API}/uploads/{upload_id}", headers=mine).json()
    assert still["status"] == "ready" and still["mapping"] == {"employee_ref": "employee_ref"}
    assert [p["name"] for p in uc.get(f"{API}/mapping-presets", headers=mine).json()] == [
        "theirs"]


def test_other_tenants_events_socket_closes_4404(uc, make_tenant, other_tenants_upload):
    _, upload_id, _ = other_tenants_upload
    token = make_tenant().users["admin"].token
    with pytest.raises(WebSocketDisconnect) as closed, uc.websocket_connect(
            f"{API}/uploads/{upload_id}/events?token={token}") as ws:
        ws.receive_json()
    assert closed.value.code == 4404


def test_unknown_id_and_listing_do_not_leak(uc, make_tenant, other_tenants_upload) -> None:
    headers = make_tenant().users["admin"].headers
    assert uc.get(f"{API}/uploads/{uuid.uuid4()}", headers=headers).status_code == 404
    assert uc.get(f"{API}/uploads", headers=headers).json()["items"] == []
    assert uc.get(f"{API}/mapping-presets", headers=headers).json() == []


def test_socket_needs_a_valid_token(uc, make_tenant) -> None:
    tenant = make_tenant()
    upload_id = tus_create(uc, tenant.users["hr"].headers, 10).rsplit("/", 1)[1]
    with pytest.raises(WebSocketDisconnect) as closed, uc.websocket_connect(
            f"{API}/uploads/{upload_id}/events?token=wrong") as ws:
        ws.receive_json()
    assert closed.value.code == 4401
    with pytest.raises(WebSocketDisconnect) as closed, uc.websocket_connect(
            f"{API}/uploads/{upload_id}/events") as ws:
        ws.send_json({"token": tenant.users["readonly"].token})
        ws.receive_json()
    assert closed.value.code == 4403


def test_events_follow_an_upload_to_ready(uc, make_tenant, database) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    add_catalog(database, tenant.id, [{"key": "team", "dtype": "text"}])
    data = b"employee_ref,team\n" + b"".join(b"E%d,T1\n" % i for i in range(250_000))
    location = tus_create(uc, headers, len(data))
    upload_id = location.rsplit("/", 1)[1]
    with uc.websocket_connect(f"{API}/uploads/{upload_id}/events") as ws:
        ws.send_json({"token": tenant.users["hr"].token})
        first = ws.receive_json()
        assert (first["status"], first["phase"], first["final"]) == (
            "received", "uploading", False)
        half = len(data) // 2
        for offset, chunk in ((0, data[:half]), (half, data[half:])):
            response = uc.patch(location, content=chunk, headers={
                **headers, **TUS, "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream"})
            assert response.status_code == 204
        mapped = uc.post(f"{API}/uploads/{upload_id}/map", headers=headers,
                         json={"employee_ref": "employee_ref", "team": "team"})
        assert mapped.status_code == 202
        events = []
        while not (events and events[-1].get("final")):
            events.append(ws.receive_json())
    received = [e["bytes_received"] for e in events if e.get("stage") == "receiving"]
    assert received == sorted(received) and received[-1] == len(data)
    assert [e["rows"] for e in events if e.get("stage") == "parsing"][-1] == 250_000
    assert [e["rows"] for e in events if e.get("stage") == "validating"][-1] == 250_000
    stages = [e.get("stage") or e.get("phase") for e in events]
    assert stages.index("scanning") < stages.index("parsing") < stages.index("validating")
    ready = next(i for i, e in enumerate(events) if e.get("status") == "ready")
    assert events[ready]["rows"]["status"] == "queued" and not events[ready]["final"]
    assert ready < stages.index("storing_rows")
    assert [e["rows"] for e in events if e.get("stage") == "storing_rows"][-1] == 250_000
    assert (events[-1]["status"], events[-1]["phase"]) == ("ready", "validated")
    assert events[-1]["rows"]["status"] == "filled" and events[-1]["rows"]["count"] == 250_000


@pytest.mark.parametrize("hub_kind", ["memory", "redis"])
def test_hub_replays_the_latest_event_then_streams(hub_kind, redis_url) -> None:
    hub = MemoryHub() if hub_kind == "memory" else RedisHub(redis_url)
    channel = f"test:{uuid.uuid4()}"
    hub.publish(channel, {"n": 1})

    async def follow() -> list[dict]:
        stream = hub.subscribe(channel)
        seen = [await anext(stream)]
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: [hub.publish(channel, {"n": n}) for n in (2, 3)])
        seen += [await anext(stream), await anext(stream)]
        await stream.aclose()
        return seen

    assert asyncio.run(follow()) == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_upload_events_are_final_for_refused_files(uc, make_tenant) -> None:
    tenant = make_tenant()
    upload_id = tus_upload(uc, tenant.users["hr"].headers, b"\x00" * 100)
    with uc.websocket_connect(
            f"{API}/uploads/{upload_id}/events?token={tenant.users['hr'].token}") as ws:
        event = ws.receive_json()
    assert (event["status"], event["final"]) == ("failed", True)
    assert "binary" in event["error"]
