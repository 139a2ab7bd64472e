"""Cursor pagination shares one codec: a cursor that does not decode into the expected sort
key is a 422 naming `query.cursor` on every list endpoint, never a server error."""

from __future__ import annotations

import base64
import json

import pytest

from server.pagination import decode_cursor, encode_cursor


def _raw(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


CRAFTED = [
    "garbage!",
    _raw({"not": "a list"}),
    _raw(["2025-01-01T00:00:00+00:00"]),  # one part short
    _raw(["not a time", "not a uuid"]),  # right shape, unparsable parts
]


@pytest.mark.parametrize("cursor", CRAFTED)
@pytest.mark.parametrize("path", ["/runs", "/audit", "/tenants/{tid}/bonus-plans"])
def test_a_crafted_cursor_is_a_422_naming_the_cursor(client, make_tenant, path, cursor) -> None:
    tenant = make_tenant()
    url = "/api/v1" + path.format(tid=tenant.id)
    response = client.get(url, headers=tenant.users["admin"].headers, params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["query", "cursor"]


def test_cursor_round_trip_parses_each_part() -> None:
    import uuid
    from datetime import UTC, datetime

    at, ident = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), uuid.uuid4()
    cursor = encode_cursor(at.isoformat(), str(ident))
    assert decode_cursor(cursor, datetime.fromisoformat, uuid.UUID) == (at, ident)
    assert decode_cursor(encode_cursor(42), int) == (42,)
