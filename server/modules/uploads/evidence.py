"""Files are evidence: nothing under the data directory goes before the database lets it go.

An upload's bytes (`<upload>.bin`) and its typed data (the Parquet a run reads) are what a
run's results were computed from. Three rules keep them:

- A file is removed only by `remove_after_commit`: the removal runs once the transaction
  that released the file (the upload row deleted, the upload refused) has committed. If
  that transaction rolls back (a run still references the upload, the commit fails), the
  files stay exactly as they were.
- A run's inputs are immutable: the typed Parquet is made read-only once written, and
  every reader checks it against the SHA-256 recorded with the upload.
- A file that should be there and is not is a `FileMissing` problem (410 Gone) naming the
  upload, its file name and which of its files is missing, never a 500.
"""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import structlog
from sqlalchemy import event
from sqlalchemy.orm import Session

from server.errors import ProblemError

log = structlog.get_logger(__name__)
_PENDING = "evidence.after_commit"
WHAT = {"original": "uploaded file", "typed": "validated (typed) data",
        "rows": "validated rows spool"}


class FileMissing(ProblemError):
    """A stored file of an upload is gone from the data directory (410 Gone)."""

    def __init__(self, upload_id: uuid.UUID, filename: str, what: str) -> None:
        detail = (f"upload {upload_id} ('{filename}'): its {WHAT[what]} is missing from the "
                  "data directory; restore it from a backup, or upload the file again")
        super().__init__(410, "Gone", detail, [{
            "loc": ["upload", str(upload_id), what], "msg": f"{WHAT[what]} missing",
            "type": "file_missing"}])
        self.upload_id = upload_id
        self.what = what


def require_file(path: Path, upload_id: uuid.UUID, filename: str, what: str) -> Path:
    """`path` if it is a file, else FileMissing naming the upload and the file."""
    if not path.is_file():
        raise FileMissing(upload_id, filename, what)
    return path


def read_bytes(path: Path, upload_id: uuid.UUID, filename: str, what: str) -> bytes:
    """The file's bytes; FileMissing when it vanished (even between a check and the read)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FileMissing(upload_id, filename, what) from None


def make_read_only(path: Path) -> None:
    """Typed data a run may depend on is never written again (r--r-----)."""
    if path.exists():
        os.chmod(path, stat.S_IRUSR | stat.S_IRGRP)


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` once the session's current transaction has committed; never if it
    rolls back."""
    session.info.setdefault(_PENDING, []).append(action)


def remove_after_commit(session: Session, paths: Iterable[Path]) -> None:
    """Unlink `paths` once the transaction that released them has committed."""
    chosen = list(paths)

    def remove() -> None:
        for path in chosen:
            path.unlink(missing_ok=True)

    after_commit(session, remove)


@event.listens_for(Session, "after_commit")
def _run_pending(session: Session) -> None:
    for action in session.info.pop(_PENDING, []):
        try:
            action()
        except Exception:  # the commit stands; a file left behind is only disk space
            log.warning("after_commit_action_failed", exc_info=True)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    """Any rollback (a savepoint's too) forgets the removals: keeping a file is safe."""
    session.info.pop(_PENDING, None)
