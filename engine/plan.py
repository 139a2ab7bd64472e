"""Compile a plan document: the one entry point that checks a plan and returns its compiled form.

`compile_plan` runs every check of `engine.check` and returns a `CompiledPlan` (typed AST,
evaluation order, typed parameter values, hash) that every backend consumes, or raises
`PlanInvalid` listing every problem. The document model and the compiled form themselves live
in `engine.model` (below the checker and the hasher, so neither imports this module); they are
re-exported here because `engine.plan` is the name callers outside the engine use.
"""

from __future__ import annotations

from typing import Any

from engine.check import Problem, check_plan
from engine.model import (
    DTYPE_TO_TYPE,
    RESERVED_INPUTS,
    CompiledPlan,
    CompiledStep,
    DType,
    InputSpec,
    ParameterSpec,
    PlanDocument,
    PlanLoadError,
    Scope,
    StepSpec,
    Value,
    coerce_value,
    load_plan,
    to_decimal,
    validate_document,
)

__all__ = [
    "DTYPE_TO_TYPE",
    "RESERVED_INPUTS",
    "CompiledPlan",
    "CompiledStep",
    "DType",
    "InputSpec",
    "ParameterSpec",
    "PlanDocument",
    "PlanInvalid",
    "PlanLoadError",
    "Scope",
    "StepSpec",
    "Value",
    "coerce_value",
    "compile_plan",
    "load_plan",
    "to_decimal",
    "validate_document",
]


class PlanInvalid(ValueError):
    """The plan failed validation; `problems` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(
            f"plan has {len(problems)} problem(s):\n"
            + "\n".join(f"  - {problem}" for problem in problems)
        )


def compile_plan(
    doc: PlanDocument, parameter_overrides: dict[str, Any] | None = None
) -> CompiledPlan:
    """Check the whole plan and compile it; raises PlanInvalid listing every problem."""
    compiled, problems = check_plan(doc, parameter_overrides)
    if problems or compiled is None:
        raise PlanInvalid(problems)
    return compiled
