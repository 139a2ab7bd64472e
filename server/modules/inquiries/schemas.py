"""Request bodies of the inquiries API."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InquiryIn(_Body):
    run_id: uuid.UUID
    employee_ref: str = Field(min_length=1, max_length=200)
    question: str = Field(min_length=1, max_length=5000)
    step: str | None = Field(None, max_length=200, description="a step of the tape")
    input_key: str | None = Field(None, max_length=200, description="an input of the tape")


class AnswerIn(_Body):
    answer: str = Field(min_length=1, max_length=5000)


class ResolveIn(_Body):
    resolution: str = Field(min_length=1, max_length=5000)
    corrected_run_id: uuid.UUID = Field(description="the re-run with the corrected data")


class RejectIn(_Body):
    reason: str = Field(min_length=1, max_length=5000)
