"""Where an upload's files live, and how its typed data is filed by content.

`<DATA_DIR>/uploads/<tenant>/<upload>.bin` (the bytes as received), `<upload>.parquet`
(validation's fresh typed data), `objects/<sha256>.parquet` (that data once the upload is
ready: read-only, shared by uploads of identical content, what runs read) and
`<upload>.rows.arrows` (the rows spool). Removal rules: see `evidence.py`. The Parquet
files and the spool are sealed under the tenant's data key (`keys/cipher.py`); the hash
that names an object is its plaintext's, so a snapshot's data hash does not depend on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from server.db.session import tenant_session
from server.modules.keys import service as keys
from server.modules.uploads import evidence
from server.modules.uploads.models import Upload
from server.settings import Settings


def upload_dir(settings: Settings, tenant_id: uuid.UUID) -> Path:
    path = Path(settings.data_dir) / "uploads" / str(tenant_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_path(settings: Settings, tenant_id: uuid.UUID, upload_id: uuid.UUID) -> Path:
    return upload_dir(settings, tenant_id) / f"{upload_id}.bin"


def parquet_path(settings: Settings, tenant_id: uuid.UUID, upload_id: uuid.UUID) -> Path:
    return upload_dir(settings, tenant_id) / f"{upload_id}.parquet"


def object_path(settings: Settings, tenant_id: uuid.UUID, sha256: str) -> Path:
    """Typed data filed by content: what a run's snapshot names by its hash."""
    folder = upload_dir(settings, tenant_id) / "objects"
    folder.mkdir(exist_ok=True)
    return folder / f"{sha256}.parquet"


def typed_data_path(settings: Settings, upload: Upload) -> Path:
    """Where a ready upload's typed data is: its content-addressed object, or (validated
    before objects existed) `<upload>.parquet`. FileMissing (410) when it is gone."""
    meta = upload.metadata_.get("parquet") or {}
    path = (object_path(settings, upload.tenant_id, meta["sha256"]) if meta.get("object")
            else parquet_path(settings, upload.tenant_id, upload.id))
    return evidence.require_file(path, upload.id, upload.filename, "typed")


def read_typed_bytes(path: Path, upload_id: uuid.UUID, filename: str,
                     cipher: keys.TenantCipher) -> bytes:
    """A ready upload's typed data (Parquet), opened with the tenant's data key;
    FileMissing (410) if it vanished since it was found."""
    return cipher.open_blob(evidence.read_bytes(path, upload_id, filename, "typed"),
                            keys.TYPED_DATA)


def original_path(settings: Settings, upload: Upload) -> Path:
    """The uploaded file's bytes on disk; FileMissing (410) when it is gone."""
    return evidence.require_file(file_path(settings, upload.tenant_id, upload.id), upload.id,
                                 upload.filename, "original")


def rows_spool_path(settings: Settings, tenant_id: uuid.UUID, upload_id: uuid.UUID) -> Path:
    return upload_dir(settings, tenant_id) / f"{upload_id}.rows.arrows"


def stored_paths(settings: Settings, upload: Upload) -> list[Path]:
    """The upload's own files (its shared typed-data object: `release_object`)."""
    return [file_path(settings, upload.tenant_id, upload.id),
            parquet_path(settings, upload.tenant_id, upload.id),
            rows_spool_path(settings, upload.tenant_id, upload.id)]


def _lock_object(session: Session, tenant_id: uuid.UUID, sha256: str) -> None:
    """Serialise filing and releasing one object until the transaction ends: a validation
    filing identical data and a delete releasing it never interleave."""
    session.execute(text("select pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                    {"key": f"object:{tenant_id}:{sha256}"})


def release_object(settings: Settings, upload: Upload) -> Callable[[], None] | None:
    """For after the upload's deletion has committed: remove its typed-data object unless
    a committed upload still names it (checked under the object's lock)."""
    meta = upload.metadata_.get("parquet") or {}
    if not meta.get("object"):
        return None
    tenant_id, sha256 = upload.tenant_id, str(meta["sha256"])

    def release() -> None:
        with tenant_session(tenant_id) as session:
            _lock_object(session, tenant_id, sha256)
            users = session.scalar(select(func.count()).select_from(Upload).where(
                Upload.metadata_["parquet"]["sha256"].astext == sha256))
            if not users:
                object_path(settings, tenant_id, sha256).unlink(missing_ok=True)

    return release


def file_typed_data(session: Session, settings: Settings, upload: Upload,
                    sha256: str | None) -> None:
    """Move the fresh Parquet to its content-addressed, read-only object (an identical
    object already there is kept: same bytes), holding the object's lock until the
    upload's transaction commits."""
    assert sha256 is not None
    _lock_object(session, upload.tenant_id, sha256)
    fresh = parquet_path(settings, upload.tenant_id, upload.id)
    target = object_path(settings, upload.tenant_id, sha256)
    if target.is_file():
        fresh.unlink()
    else:
        evidence.make_read_only(fresh)
        fresh.replace(target)
