"""Waiting for queued upload work (validation, rows fill) to settle, by polling."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

API = "/api/v1"
SETTLE_SECONDS = 180.0


def settled(client: TestClient, headers: dict, upload_id: str,
            deadline_seconds: float = SETTLE_SECONDS) -> dict:
    """Poll GET /uploads/{id} until nothing more happens by itself: failed, or ready with
    its rows filled or failed (bounded by a deadline, not a sleep)."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        body = client.get(f"{API}/uploads/{upload_id}", headers=headers).json()
        rows = (body.get("rows") or {}).get("status")
        if body["status"] == "failed" or (body["status"] == "ready"
                                          and rows not in ("queued", "filling")):
            return body
        assert time.monotonic() < deadline, f"upload {upload_id} still {body['status']}: {body}"
        time.sleep(0.02)
