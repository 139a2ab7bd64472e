"""Response and request shapes of the uploads API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class UploadOut(BaseModel):
    id: uuid.UUID
    filename: str
    kind: str
    status: str
    phase: str | None
    file_size: int | None
    received_bytes: int
    sha256: str | None
    error: str | None
    scan: dict[str, Any] | None
    format: dict[str, Any] | None
    mapping: dict[str, str] | None
    plan_id: uuid.UUID | None
    summary: dict[str, Any] | None
    parquet_sha256: str | None
    timings: dict[str, float] | None = Field(
        None, description="seconds per stage: sha256, scan, sniff, parse, validate, parquet, "
        "spool, duplicates, validation (all of validation)")
    rows: dict[str, Any] | None = Field(
        None, description="employee_rows of a ready upload: status (queued, filling, filled, "
        "failed), expected, count, error, seconds")
    created_at: datetime
    updated_at: datetime


class UploadPage(BaseModel):
    items: list[UploadOut]
    next_cursor: str | None


class PresetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: str
    mapping: dict[str, str]
    headers: list[str]
    created_at: datetime
    updated_at: datetime


class PresetRename(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class Alternative(BaseModel):
    column: str
    confidence: float
    source: str


class SuggestionOut(BaseModel):
    key: str
    label: str
    dtype: str
    scope: str
    required: bool
    column: str | None
    confidence: float
    source: str | None
    alternatives: list[Alternative]


class SuggestionsOut(BaseModel):
    upload_id: uuid.UUID
    plan_id: uuid.UUID | None
    columns: list[str]
    suggestions: list[SuggestionOut]
    unmapped_columns: list[str]


class ProblemOut(BaseModel):
    row: int | None = Field(description="file row as a spreadsheet shows it (header row incl.)")
    column: str | None
    input_key: str | None
    value: str | None
    rule: dict[str, Any]
    message: str
    hint: str


class ValidationOut(BaseModel):
    upload_id: uuid.UUID
    status: str
    mapping: dict[str, str] | None
    summary: dict[str, Any] | None
    problems: list[ProblemOut]
    next_cursor: str | None


class PreviewColumn(BaseModel):
    index: int
    name: str
    inferred_type: str
    warnings: list[dict[str, Any]]


class PreviewRow(BaseModel):
    row: int
    cells: list[str]


class PreviewOut(BaseModel):
    upload_id: uuid.UUID
    format: dict[str, Any]
    columns: list[PreviewColumn]
    rows: list[PreviewRow]


class ReadingIn(BaseModel):
    """Choices that override detection; omitted fields keep what detection found."""

    model_config = ConfigDict(extra="forbid")

    sheet: str | None = Field(None, min_length=1, max_length=255)
    header_row: int | None = Field(None, ge=1, le=20)
    encoding: str | None = Field(None, min_length=1, max_length=40)
    decimal: Literal[".", ","] | None = None
    thousands: Literal[",", ".", " ", "'"] | None = None
    date_order: Literal["dmy", "mdy"] | None = None
