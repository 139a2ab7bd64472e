"""The plan document (ENGINE.md §1) and the shape of its compiled form: data, no checking.

`PlanDocument` is exactly the JSON a plan is stored as; `load_plan` reads it from JSON or
YAML without ever turning a number into a float. `CompiledPlan` is what `engine.check`
produces and every backend and `engine.hashing` consume. This module sits below all of them
(it imports no other plan module), so the checker and the hasher can both import it; the
entry point that checks and compiles, `compile_plan`, lives one level up in `engine.plan`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine import r10
from engine.deferral import DeferralPolicy
from engine.dsl.ast import Node, Type

DType = Literal["decimal", "int", "bool", "text", "date"]
Scope = Literal["employee", "fund"]
RESERVED_INPUTS = ("employee_ref", "fund_ref")

DTYPE_TO_TYPE: dict[str, Type] = {
    "decimal": Type.DECIMAL,
    "int": Type.DECIMAL,
    "bool": Type.BOOL,
    "text": Type.TEXT,
    "date": Type.DATE,
}

Value = Decimal | bool | str | date


def to_decimal(raw: Any) -> Decimal:
    """An exact Decimal from a plan value (string, int, Decimal; a float by its shortest
    repr, which is what the author typed). Raises ValueError saying what is wrong."""
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"expected a decimal number, got {raw!r}")
    if isinstance(raw, float):
        raw = repr(raw)
    try:
        value = Decimal(raw.strip() if isinstance(raw, str) else raw)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"expected a decimal number, got {raw!r}") from None
    if not value.is_finite():
        raise ValueError(f"expected a finite decimal number, got {raw!r}")
    if r10.overflows(value):
        raise ValueError(f"{raw!r} is out of range (|x| must be below 1e28)")
    if r10.r10(value) != value:
        raise ValueError(f"{raw!r} has more than 10 decimal places")
    return r10.r10(value)


def coerce_value(dtype: str, raw: Any) -> Value:
    """A plan value (parameter value, input default) as the Python value of its dtype."""
    if dtype in ("decimal", "int"):
        value = to_decimal(raw)
        if dtype == "int" and value != value.to_integral_value():
            raise ValueError(f"expected a whole number, got {raw!r}")
        return value
    if dtype == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        raise ValueError(f"expected true or false, got {raw!r}")
    if dtype == "text":
        if isinstance(raw, str):
            return raw
        raise ValueError(f"expected text, got {raw!r}")
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise ValueError(f"expected an ISO date like 2025-01-31, got {raw!r}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


DisplayFormat = Literal["money", "percent", "points", "integer", "number"]
"""How a statement shows a decimal (presentation only, outside the plan hash): `money` in
the plan currency, `percent` a fraction as a percentage (-0.0132 -> -1.32%), `points` a value
already in percent (40 -> 40%), `integer` a whole number (365), `number` as computed."""
PRESENTATION_FIELDS = ("label", "format")
"""Fields that change how a statement reads, never what the plan computes: left out of the
plan and snapshot hashes (engine/hashing.py) unless an input's label (hashed since v1)."""


class InputSpec(_Strict):
    """A declared input column. `default` (typed by dtype) fills empty cells."""

    key: str
    label: str | None = None
    dtype: DType
    scope: Scope = "employee"
    required: bool = True
    default: Any = None
    format: DisplayFormat | None = None

    @model_validator(mode="after")
    def _typed_default(self) -> InputSpec:
        if self.default is not None:
            self.default = coerce_value(self.dtype, self.default)
        return self


class ParameterSpec(_Strict):
    """A plan-level constant; its value is part of the plan version."""

    key: str
    dtype: DType
    value: Any
    label: str | None = None
    format: DisplayFormat | None = None

    @model_validator(mode="after")
    def _typed_value(self) -> ParameterSpec:
        if self.value is None:
            raise ValueError("a parameter needs a value")
        self.value = coerce_value(self.dtype, self.value)
        return self


class StepSpec(_Strict):
    """One step: defines the variable `name` as `expr` (guarded by `condition`).

    `default` is DSL literal text of the step's type ("0", "true", "\\"x\\"",
    "\\"2025-01-01\\""); numbers and booleans given as JSON values are accepted.
    """

    order: int
    name: str
    expr: str
    condition: str | None = None
    default: str | None = None
    notes: str = ""
    label: str | None = None
    format: DisplayFormat | None = None

    @field_validator("condition", mode="before")
    @classmethod
    def _blank_condition_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("default", mode="before")
    @classmethod
    def _default_as_text(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | Decimal):
            return str(value)
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, str) and not value.strip():
            return None
        return value


class PlanDocument(_Strict):
    """The plan as stored (ENGINE.md §1)."""

    name: str = Field(min_length=1)
    version: int = 1
    effective_from: date
    effective_to: date | None = None
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    inputs: list[InputSpec] = Field(default_factory=list)
    parameters: list[ParameterSpec] = Field(default_factory=list)
    steps: list[StepSpec] = Field(min_length=1)
    payout: str
    deferral: DeferralPolicy | None = None

    @model_validator(mode="after")
    def _period(self) -> PlanDocument:
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        return self


class PlanLoadError(ValueError):
    """A plan file that is not a valid plan document; `problems` names each field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"{source}: invalid plan document:\n"
            + "\n".join(f"  - {problem}" for problem in problems)
        )


def _field_path(location: tuple) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "document"


def validate_document(data: Any, source: str = "plan") -> PlanDocument:
    """A PlanDocument from parsed JSON/YAML, or PlanLoadError naming every bad field."""
    try:
        return PlanDocument.model_validate(data)
    except ValidationError as error:
        problems = [f"{_field_path(e['loc'])}: {e['msg']}" for e in error.errors()]
        raise PlanLoadError(source, problems) from None


class _DecimalLoader(yaml.SafeLoader):
    """YAML loader that reads floats as exact Decimals (money is never a float)."""


def _exact_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal | str:
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        return Decimal(text)
    except InvalidOperation:
        return text  # e.g. ".inf": left as text, rejected with a message by coerce_value


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _exact_float)


def load_plan(path: str | Path) -> PlanDocument:
    """Read a plan from .json, .yaml or .yml. Errors name the file and the field."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text, parse_float=Decimal)
        elif suffix in (".yaml", ".yml"):
            data = yaml.load(text, Loader=_DecimalLoader)  # SafeLoader subclass
        else:
            raise PlanLoadError(str(path), ["file must end in .json, .yaml or .yml"])
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise PlanLoadError(str(path), [f"not valid {suffix[1:].upper()}: {error}"]) from None
    return validate_document(data, str(path))


@dataclass(frozen=True, eq=False)
class CompiledStep:
    """A checked step. `default` is a typed literal node, or None for a null date default."""

    name: str
    order: int
    expr: Node
    condition: Node | None
    default: Node | None
    type: Type
    reads: frozenset[str]


@dataclass(frozen=True, eq=False)
class CompiledPlan:
    """A plan ready to evaluate: typed trees in evaluation order plus everything backends
    need to know about inputs and parameters. Compared and hashed by identity, so backends
    may cache per compiled plan."""

    document: PlanDocument
    steps: tuple[CompiledStep, ...]
    display_order: tuple[str, ...]
    input_types: dict[str, Type]
    input_scopes: dict[str, str]
    parameters: dict[str, tuple[Type, Value]]
    payout: str
    dependencies: dict[str, frozenset[str]]
    plan_hash: str

    def step(self, name: str) -> CompiledStep:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    @property
    def uses_fund_ref(self) -> bool:
        """True when any step reads `fund_ref` (the input frame must then carry it)."""
        return any("fund_ref" in step.reads for step in self.steps)
