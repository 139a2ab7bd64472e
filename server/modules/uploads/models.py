"""ORM models: uploads, employee_rows, mapping presets and validation problems."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, TenantScoped, uuid_pk


class Upload(TenantScoped, Base):
    __tablename__ = "uploads"

    id: Mapped[uuid.UUID] = uuid_pk()
    created_by: Mapped[uuid.UUID | None]
    filename: Mapped[str]
    kind: Mapped[str]
    status: Mapped[str]
    file_size: Mapped[int | None]
    sha256: Mapped[str | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    mapping: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    plan_id: Mapped[uuid.UUID | None]
    error: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(),
                                                 onupdate=func.now())


class EmployeeRow(TenantScoped, Base):
    """One data row of a ready upload, keyed by its spreadsheet row (migration 0040)."""

    __tablename__ = "employee_rows"

    upload_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    file_row: Mapped[int] = mapped_column(primary_key=True)
    employee_ref: Mapped[str]
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class MappingPreset(TenantScoped, Base):
    __tablename__ = "mapping_presets"

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str]
    kind: Mapped[str]
    mapping: Mapped[dict[str, str]] = mapped_column(JSONB)
    headers: Mapped[list[str]] = mapped_column(JSONB, default=list)
    profile: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(),
                                                 onupdate=func.now())


class UploadProblem(TenantScoped, Base):
    __tablename__ = "upload_problems"

    upload_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    file_row: Mapped[int | None]
    column_name: Mapped[str | None]
    input_key: Mapped[str | None]
    value: Mapped[str | None]
    rule: Mapped[dict[str, Any]] = mapped_column(JSONB)
    message: Mapped[str]
    hint: Mapped[str]


class MappingAlias(TenantScoped, Base):
    """A header the tenant declares for one input ("DOJ" feeds `start_date`)."""

    __tablename__ = "mapping_aliases"

    input_key: Mapped[str] = mapped_column(primary_key=True)
    alias: Mapped[str] = mapped_column(primary_key=True)
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
