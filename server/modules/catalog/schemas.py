"""Request and response bodies of the input catalog routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DType = Literal["decimal", "int", "text", "date", "bool"]
Scope = Literal["employee", "fund"]


class CatalogInputOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    key: str
    label: str
    dtype: DType
    scope: Scope
    required: bool
    default_value: Any | None
    validation: dict[str, Any]
    sensitive: bool = Field(description="values are encrypted at rest in every stored row")
    created_at: datetime


class CatalogList(BaseModel):
    items: list[CatalogInputOut]


class CatalogInputCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=63, examples=["employee_score"])
    label: str = Field(min_length=1, max_length=200)
    dtype: DType
    scope: Scope = "employee"
    required: bool = False
    default_value: Any | None = None
    validation: dict[str, Any] = Field(default_factory=dict)
    sensitive: bool | None = Field(default=None, description="unset: on for dates and for "
                                   "keys or labels naming pay, names or contact details")


class CatalogInputUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, min_length=1, max_length=200)
    dtype: DType | None = None
    scope: Scope | None = None
    required: bool | None = None
    default_value: Any | None = None
    validation: dict[str, Any] | None = None
    sensitive: bool | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> CatalogInputUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self
