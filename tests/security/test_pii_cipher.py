"""The sealing format itself (no database): values and files round-trip, and every kind of
tampering is refused by name rather than decrypted to garbage."""

from __future__ import annotations

import io
import os
import uuid

import pytest

from server.modules.keys.cipher import SEGMENT, TAG, TenantCipher, Undecryptable

FIELD = "uploads.typed_data"


def _cipher(tenant: uuid.UUID | None = None) -> TenantCipher:
    return TenantCipher(tenant or uuid.uuid4(), {1: os.urandom(32), 2: os.urandom(32)}, 2)


def _sealed(cipher: TenantCipher, data: bytes, chunk: int = 100_003) -> bytes:
    target = io.BytesIO()
    writer = cipher.writer(target, FIELD)
    for start in range(0, len(data), chunk):
        writer.write(data[start:start + chunk])
    writer.close()
    assert writer.tell() == len(data)
    return target.getvalue()


@pytest.mark.parametrize("size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT + 17])
def test_files_round_trip_at_segment_edges(size: int) -> None:
    cipher, data = _cipher(), os.urandom(size)
    sealed = _sealed(cipher, data)
    assert cipher.open_blob(sealed, FIELD) == data
    reader = cipher.reader(io.BytesIO(sealed), FIELD)
    pieces = []
    while piece := reader.read(65_537):
        pieces.append(piece)
    assert b"".join(pieces) == data


def test_tampered_truncated_reordered_or_foreign_files_are_refused() -> None:
    cipher, data = _cipher(), os.urandom(2 * SEGMENT + 10)
    sealed = _sealed(cipher, data)
    header = len(sealed) - (2 * (SEGMENT + TAG) + 10 + TAG)
    first, second = header, header + SEGMENT + TAG
    flipped = bytearray(sealed)
    flipped[first + 5] ^= 1
    cases = {
        "flipped byte": bytes(flipped),
        "last segment dropped": sealed[:second + SEGMENT + TAG],
        "truncated inside": sealed[:-3],
        "segments swapped": sealed[:first] + sealed[second:second + SEGMENT + TAG]
        + sealed[first:second] + sealed[second + SEGMENT + TAG:],
    }
    for name, blob in cases.items():
        with pytest.raises(Undecryptable):
            cipher.open_blob(blob, FIELD)
            pytest.fail(name)
    with pytest.raises(Undecryptable):
        _cipher().open_blob(sealed, FIELD)  # another tenant's keys
    with pytest.raises(Undecryptable):
        cipher.open_blob(sealed, "uploads.rows_spool")  # another field
    with pytest.raises(Undecryptable, match="neither sealed nor Parquet"):
        cipher.open_blob(b"garbage", FIELD)


def test_values_bind_tenant_field_and_version() -> None:
    tenant = uuid.uuid4()
    cipher = _cipher(tenant)
    token = cipher.seal("f", "123456.78")
    assert token.startswith("pii1:2:") and "123456.78" not in token
    assert cipher.seal("f", "123456.78") != token  # a fresh nonce each time
    assert cipher.open("f", token) == "123456.78"
    old = TenantCipher(tenant, cipher.keys, 1).seal("f", "x")
    assert cipher.open("f", old) == "x"  # older versions stay readable
    for bad in (token.replace("pii1:2:", "pii1:1:"), token[:-4] + "AAAA", "pii1:9:AAAA"):
        with pytest.raises(Undecryptable):
            cipher.open("f", bad)
    with pytest.raises(Undecryptable):
        cipher.open("g", token)
