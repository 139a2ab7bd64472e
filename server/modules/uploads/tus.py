"""The tus 1.0 wire protocol: headers, offsets, checksums, and appending a request body.

Bytes go straight from the request stream to the end of the upload's file, and into a
running SHA-256 kept per upload in this process; if another process took the previous
chunk (or after a restart) the digest is rebuilt from the file on disk. One writer per
upload at a time (an exclusive `flock`; a second concurrent PATCH gets 423). A dropped
connection keeps every byte received, as tus requires, unless the chunk carried an
`Upload-Checksum`: an unverifiable chunk is discarded.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import ClientDisconnect

from server.errors import ProblemError

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,checksum"
CHECKSUM_ALGORITHMS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1, "md5": hashlib.md5}
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
PROGRESS_BYTES = 1024 * 1024


def tus_headers(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", **extra}


def bad_request(detail: str, header: str) -> ProblemError:
    return ProblemError(400, "Bad Request", detail, [{"loc": ["header", header], "msg": detail}],
                        headers=tus_headers())


def require_tus_version(value: str | None) -> None:
    if value != TUS_VERSION:
        raise ProblemError(412, "Precondition Failed",
                           f"Tus-Resumable must be {TUS_VERSION}",
                           headers={"Tus-Version": TUS_VERSION, "Tus-Resumable": TUS_VERSION})


def non_negative_int(value: str | None, header: str) -> int:
    """A header that must hold a non-negative integer (Upload-Length, Upload-Offset)."""
    if value is None:
        raise bad_request(f"{header} header is required", header)
    text = value.strip()
    if not text.isdigit():
        raise bad_request(f"{header} must be a non-negative integer, got {value!r}", header)
    return int(text)


def parse_metadata(value: str | None) -> dict[str, str]:
    """Upload-Metadata: `key base64value,key2 base64value2` (values may be absent)."""
    result: dict[str, str] = {}
    if not value:
        return result
    for pair in value.split(","):
        parts = pair.strip().split(" ")
        if not parts[0] or len(parts) > 2:
            raise bad_request(f"malformed Upload-Metadata entry {pair!r}", "Upload-Metadata")
        try:
            decoded = base64.b64decode(parts[1], validate=True).decode() if len(parts) == 2 else ""
        except (ValueError, UnicodeDecodeError):
            raise bad_request(f"Upload-Metadata value of {parts[0]!r} is not base64 UTF-8",
                              "Upload-Metadata") from None
        result[parts[0]] = decoded
    return result


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    def hasher(self) -> Any:
        return CHECKSUM_ALGORITHMS[self.algorithm]()


def parse_checksum(value: str | None) -> Checksum | None:
    if not value:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise bad_request(f"unsupported checksum algorithm {algorithm!r}", "Upload-Checksum")
    try:
        return Checksum(algorithm, base64.b64decode(encoded, validate=True))
    except ValueError:
        raise bad_request("Upload-Checksum digest is not base64", "Upload-Checksum") from None


_digests: dict[uuid.UUID, tuple[int, Any]] = {}
_digests_lock = threading.Lock()


def _running_digest(upload_id: uuid.UUID, handle: Any, offset: int) -> Any:
    with _digests_lock:
        cached = _digests.get(upload_id)
    if cached is not None and cached[0] == offset:
        return cached[1]
    digest = hashlib.sha256()
    handle.seek(0)
    remaining = offset
    while remaining:
        chunk = handle.read(min(remaining, 1024 * 1024))
        digest.update(chunk)
        remaining -= len(chunk)
    return digest


def _remember(upload_id: uuid.UUID, offset: int, digest: Any) -> None:
    with _digests_lock:
        _digests[upload_id] = (offset, digest)


def forget(upload_id: uuid.UUID) -> None:
    with _digests_lock:
        _digests.pop(upload_id, None)


def final_sha256(upload_id: uuid.UUID, path: Path) -> str:
    """The SHA-256 of the whole file: the running digest when it is current."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        digest = _running_digest(upload_id, handle, size)
    forget(upload_id)
    return digest.hexdigest()


@dataclass
class AppendResult:
    offset: int
    disconnected: bool


async def append(upload_id: uuid.UUID, path: Path, offset: int, length: int,
                 body: AsyncIterator[bytes], checksum: Checksum | None,
                 on_progress: Callable[[int], None]) -> AppendResult:
    """Append `body` at `offset` (409 if the file is elsewhere); never beyond `length`."""
    with path.open("r+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ProblemError(423, "Locked", "another request is writing this upload",
                               headers=tus_headers()) from None
        size = os.fstat(handle.fileno()).st_size
        if size != offset:
            raise ProblemError(409, "Conflict",
                               f"Upload-Offset {offset} does not match the upload's offset {size}",
                               headers=tus_headers(**{"Upload-Offset": str(size)}))
        digest = _running_digest(upload_id, handle, offset)
        saved = digest.copy()
        chunk_hash = checksum.hasher() if checksum else None
        handle.seek(offset)
        written, reported, disconnected = offset, offset, False
        try:
            async for piece in body:
                if written + len(piece) > length:
                    _rollback(handle, offset)
                    _remember(upload_id, offset, saved)
                    raise bad_request(
                        f"the request body goes beyond Upload-Length ({length} bytes)",
                        "Content-Length")
                handle.write(piece)
                digest.update(piece)
                if chunk_hash is not None:
                    chunk_hash.update(piece)
                written += len(piece)
                if written - reported >= PROGRESS_BYTES:
                    reported = written
                    on_progress(written)
        except ClientDisconnect:
            disconnected = True
        if checksum is not None and (disconnected or chunk_hash.digest() != checksum.digest):
            _rollback(handle, offset)
            _remember(upload_id, offset, saved)
            if disconnected:
                return AppendResult(offset, True)
            raise ProblemError(460, "Checksum Mismatch",
                               f"the chunk's {checksum.algorithm} does not match "
                               "Upload-Checksum; it was discarded",
                               headers=tus_headers(**{"Upload-Offset": str(offset)}))
        handle.flush()
        _remember(upload_id, written, digest)
        on_progress(written)
        return AppendResult(written, disconnected)


def _rollback(handle: Any, offset: int) -> None:
    handle.flush()
    handle.truncate(offset)
