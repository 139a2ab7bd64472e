"""Bodies of the approvals API (PRD §15.6)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["manager_approve", "hr_approve", "finance_approve", "reject"]


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Action
    comment: str | None = Field(None, max_length=2000,
                                description="required when rejecting: the reason")


class FinalizeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str | None = Field(None, max_length=2000)
    override_inquiries_reason: str | None = Field(
        None, max_length=2000,
        description="finalize despite unresolved inquiries, saying why (audited)")
