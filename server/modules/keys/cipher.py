"""AES-256-GCM under a tenant's data keys: single values (database fields) and files.

Values: `pii1:<version>:<base64(nonce | ciphertext | tag)>`, a fresh 96-bit nonce each.
Files (typed Parquet, the rows spool): a streaming envelope, so neither side holds a whole
file twice nor writes plaintext to disk::

    header   b"PSPII1\\0" | data-key version (u32) | nonce prefix (7 random bytes)
    segments AES-GCM of 1 MiB of plaintext each (the last one shorter, possibly empty),
             nonce = prefix | segment index (u32) | 1 on the last segment else 0

The authenticated data of both binds the tenant, the field (`employee_rows.raw`,
`uploads.typed_data`, ...) and the key version, so a value copied to another tenant or
another field, a reordered/dropped/truncated segment, or a changed version does not decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.errors import ProblemError

PREFIX = "pii1:"
MAGIC = b"PSPII1\0"
HEADER = struct.Struct(">I7s")
SEGMENT = 1 << 20
TAG = 16
PARQUET_MAGIC = b"PAR1"


class Undecryptable(ProblemError):
    """A ciphertext that does not open under the tenant's keys for this field (409: the
    stored data was altered or moved, never shown as garbage)."""

    def __init__(self, message: str) -> None:
        super().__init__(409, "Conflict", f"stored data does not decrypt: {message}")


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def is_sealed_file(head: bytes) -> bool:
    return head.startswith(MAGIC)


@dataclass(frozen=True)
class TenantCipher:
    """A tenant's unwrapped data keys (version → key); `active` encrypts."""

    tenant_id: uuid.UUID
    keys: Mapping[int, bytes]
    active: int

    def _aad(self, field: str, version: int) -> bytes:
        return f"paysheet-pii|{self.tenant_id}|{field}|v{version}".encode()

    def _key(self, version: int, field: str) -> AESGCM:
        if version not in self.keys:
            raise Undecryptable(f"{field}: data key version {version} of tenant "
                                f"{self.tenant_id} does not exist")
        return AESGCM(self.keys[version])

    # -- values ------------------------------------------------------------------------
    def seal(self, field: str, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._key(self.active, field).encrypt(
            nonce, plaintext.encode(), self._aad(field, self.active))
        return f"{PREFIX}{self.active}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, field: str, token: str) -> str:
        try:
            _, version_text, body = token.split(":", 2)
            version = int(version_text)
            raw = base64.b64decode(body, validate=True)
        except ValueError:
            raise Undecryptable(f"{field}: not a sealed value") from None
        try:
            return self._key(version, field).decrypt(
                raw[:12], raw[12:], self._aad(field, version)).decode()
        except InvalidTag:
            raise Undecryptable(f"{field}: the value does not decrypt under tenant "
                                f"{self.tenant_id}'s data key v{version} (altered, or "
                                "another tenant's or field's value)") from None

    def open_if_sealed(self, field: str, value: object) -> object:
        return self.open(field, value) if is_sealed(value) else value

    # -- files -------------------------------------------------------------------------
    def writer(self, target: BinaryIO, field: str) -> SealingWriter:
        return SealingWriter(target, self._key(self.active, field),
                             self._aad(field, self.active), self.active)

    def reader(self, source: BinaryIO, field: str) -> OpeningReader:
        """A reader of a sealed file's plaintext (the header is read and checked here)."""
        head = source.read(len(MAGIC) + HEADER.size)
        if not is_sealed_file(head):
            raise Undecryptable(f"{field}: not a sealed file")
        version, prefix = HEADER.unpack(head[len(MAGIC):])
        return OpeningReader(source, self._key(version, field), self._aad(field, version),
                             prefix, head, field)

    def open_file(self, path: Path, field: str) -> bytes:
        """A sealed file's whole plaintext (a legacy plaintext Parquet as it is)."""
        return self.open_blob(path.read_bytes(), field)

    def open_blob(self, data: bytes, field: str) -> bytes:
        """A sealed file's bytes opened; a legacy plaintext Parquet (written before
        migration 0131 sealed them) as it is."""
        if not is_sealed_file(data):
            if data.startswith(PARQUET_MAGIC):
                return data
            raise Undecryptable(f"{field}: neither sealed nor Parquet")
        return self.reader(io.BytesIO(data), field).read()


class SealingWriter:
    """A write-only file object: plaintext in, sealed segments out (pyarrow writes to it).
    Also hashes the plaintext (`sha256`), which is what a content hash means here."""

    def __init__(self, target: BinaryIO, key: AESGCM, aad: bytes, version: int) -> None:
        self.target, self.key, self.prefix = target, key, os.urandom(7)
        self.header = MAGIC + HEADER.pack(version, self.prefix)
        self.aad = self.header + aad
        self.target.write(self.header)
        self.buffer = bytearray()
        self.index = 0
        self.position = 0
        self.digest = hashlib.sha256()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = bytes(data)
        self.digest.update(view)
        self.buffer += view
        self.position += len(view)
        while len(self.buffer) > SEGMENT:
            self._segment(bytes(self.buffer[:SEGMENT]), last=False)
            del self.buffer[:SEGMENT]
        return len(view)

    def _segment(self, plaintext: bytes, last: bool) -> None:
        nonce = self.prefix + struct.pack(">IB", self.index, 1 if last else 0)
        self.target.write(self.key.encrypt(nonce, plaintext, self.aad))
        self.index += 1

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        self.target.flush()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        if not self.closed:
            self._segment(bytes(self.buffer), last=True)
            self.buffer.clear()
            self.target.flush()
            self.closed = True

    @property
    def sha256(self) -> str:
        return self.digest.hexdigest()


class OpeningReader:
    """A read-only file object over a sealed file's plaintext, one segment at a time;
    truncation, reordering or any changed byte raises Undecryptable."""

    def __init__(self, source: BinaryIO, key: AESGCM, aad: bytes, prefix: bytes,
                 header: bytes, field: str) -> None:
        self.source, self.key, self.prefix, self.field = source, key, prefix, field
        self.aad = header + aad
        self.pending = source.read(SEGMENT + TAG)
        self.buffer = b""
        self.offset = 0
        self.index = 0
        self.done = False
        self.closed = False

    def _next(self) -> None:
        chunk, self.pending = self.pending, (self.source.read(SEGMENT + TAG)
                                             if self.pending else b"")
        last = not self.pending
        nonce = self.prefix + struct.pack(">IB", self.index, 1 if last else 0)
        try:
            self.buffer += self.key.decrypt(nonce, chunk, self.aad)
        except InvalidTag:
            raise Undecryptable(f"{self.field}: segment {self.index} does not decrypt "
                                "(altered, truncated, or another tenant's file)") from None
        self.index += 1
        self.done = last

    def read(self, size: int = -1) -> bytes:
        while not self.done and (size < 0 or len(self.buffer) - self.offset < size):
            if self.offset:  # drop what was read before appending (no quadratic copies)
                self.buffer, self.offset = self.buffer[self.offset:], 0
            self._next()
        end = len(self.buffer) if size < 0 else min(len(self.buffer), self.offset + size)
        out = self.buffer[self.offset:end]
        self.offset = end
        return out

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True
