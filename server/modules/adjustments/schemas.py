"""Request bodies of the adjustment-runs API."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    original_run_id: uuid.UUID = Field(description="the finalized run being corrected")
    upload_id: uuid.UUID = Field(description="a ready employees upload with corrected data")
    funds_upload_id: uuid.UUID | None = None
    plan_id: uuid.UUID | None = Field(
        None, description="a new locked plan version for the same period (default: the "
                          "original run's plan)")
    reason: str = Field(min_length=1, max_length=2000)
