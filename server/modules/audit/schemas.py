"""Response bodies of the audit routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    actor_user_id: uuid.UUID | None
    action: str
    entity: str
    entity_id: uuid.UUID
    before: Any | None
    after: Any | None
    at: datetime
    request_id: str | None
    prev_signature: str | None
    signature: str
    seq: int
    key_id: str | None
    mac: str | None


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: str | None


class ChainVerification(BaseModel):
    ok: bool
    checked: int
    broken_event_id: int | None = None
    reason: str | None = None
    broken_checkpoint: int | None = None
    checkpoints: int = 0
    legacy_unkeyed: int = 0
