"""ORM model of the tenant's input catalog (table from migration 0001)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, TenantScoped, uuid_pk


class CatalogInput(TenantScoped, Base):
    """One input definition (`employee_score`, `aum`, ...) that plans declare by key."""

    __tablename__ = "input_catalog"

    id: Mapped[uuid.UUID] = uuid_pk()
    key: Mapped[str]
    label: Mapped[str]
    dtype: Mapped[str]
    scope: Mapped[str] = mapped_column(default="employee")
    required: Mapped[bool] = mapped_column(default=False)
    default_value: Mapped[Any | None] = mapped_column(JSONB)
    validation: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Values encrypted wherever the database stores them (keys area; migration 0130).
    sensitive: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
