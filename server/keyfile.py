"""Private JSON key files (audit HMAC keys, PII key-encryption keys): written atomically
with mode 0600, never readable by others, not even for a moment, and created once when
several processes start at the same time."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any


def write_private_json(path: Path, document: dict[str, Any]) -> None:
    """Replace `path` with `document`: a fresh 0600 temporary file, synced, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def create_private_json(path: Path, document: dict[str, Any]) -> None:
    """Create `path` holding `document` unless it exists: a complete file is linked into
    place, so a concurrent reader never sees half of one; when another process created it
    first, theirs stays."""
    temporary = path.with_suffix(f".{os.getpid()}.new")
    write_private_json(temporary, document)
    try:
        os.link(temporary, path)
    except FileExistsError:  # another process created it first: use theirs
        pass
    finally:
        temporary.unlink()
