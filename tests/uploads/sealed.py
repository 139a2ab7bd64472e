"""Test helper: the plaintext of a typed-data file sealed under its tenant's data key."""

from __future__ import annotations

import uuid
from pathlib import Path

from server.db.session import tenant_session
from server.modules.keys import service as keys
from server.settings import Settings


def opened_typed(settings: Settings, tenant_id: uuid.UUID, path: Path) -> bytes:
    """The Parquet bytes a sealed typed-data file holds (what its sha256 names)."""
    with tenant_session(tenant_id) as session:
        cipher = keys.cipher(session, settings)
    return cipher.open_file(Path(path), keys.TYPED_DATA)
