"""Plan validation for the server: engine problems as located diagnostics.

Two levels. `diagnose(document)` runs every engine check on a stored (possibly incomplete)
draft document and returns diagnostics without raising: what the add-in writes back into
the sheet and what blocks a lock. `step_errors(...)` is the strict PRD §15.2 check of one step
sent to the steps API (legal, unique name; parsing expressions; no cycle), as 422 errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from engine.check import Problem, check_plan
from engine.dsl.ast import names
from engine.dsl.errors import DslSyntaxError
from engine.dsl.parser import parse
from engine.plan import CompiledPlan, PlanDocument
from server.modules.catalog.service import name_problem

# Header fields a draft may lack; the other checks run with a placeholder in their place.
PLACEHOLDERS: dict[str, Any] = {
    "name": "draft",
    "effective_from": "2000-01-01",
    "effective_to": None,
    "currency": "XXX",
}
TYPED_PLACEHOLDERS: dict[Any, Any] = {
    "decimal": "0",
    "int": "0",
    "bool": False,
    "text": "",
    "date": "2000-01-01",
}
MISSING_MESSAGES = {
    "name": "the plan needs a name",
    "effective_from": "the plan needs an effective_from date",
    "currency": "the plan needs a currency (three capital letters, e.g. USD)",
    "payout": "choose the payout step (the step whose value is the employee's payout)",
    "steps": "the plan has no steps",
}


def diagnostic(
    code: str,
    message: str,
    step: str | None = None,
    field: str | None = None,
    line: int | None = None,
    column: int | None = None,
) -> dict[str, Any]:
    return {
        "step": step,
        "field": field,
        "line": line,
        "column": column,
        "code": code,
        "message": message,
    }


def _from_problem(problem: Problem) -> dict[str, Any]:
    return diagnostic(
        problem.code, problem.message, problem.step, problem.field, problem.line, problem.column
    )


def _shape_diagnostic(document: Mapping[str, Any], err: Mapping[str, Any]) -> dict[str, Any]:
    """One error of the engine's document model as a diagnostic on its step or field."""
    loc = err["loc"]
    top = str(loc[0]) if loc else "document"
    steps = document.get("steps") or []
    step = None
    field: str | None = top
    if top == "steps" and len(loc) > 1 and isinstance(loc[1], int) and loc[1] < len(steps):
        step = steps[loc[1]].get("name")
        field = str(loc[2]) if len(loc) > 2 else None
    missing = document.get(top) in (None, []) and top in MISSING_MESSAGES
    if missing:
        return diagnostic("missing", MISSING_MESSAGES[top], step, field)
    path = ".".join(str(part) for part in loc) or "document"
    return diagnostic("invalid_document", f"{path}: {err['msg']}", step, field)


def _neutralise(patched: dict[str, Any], loc: tuple[Any, ...]) -> bool:
    """Replace the value at `loc` by a harmless placeholder so the remaining checks can run
    (the diagnostic for it is already recorded); False when that is not possible."""
    top = str(loc[0]) if loc else ""
    if top in PLACEHOLDERS:
        patched[top] = PLACEHOLDERS[top]
        return True
    if top == "payout":
        return True  # a missing payout is handled by the caller
    if top == "deferral":
        patched["deferral"] = None  # reported; the steps are still checked without it
        return True
    section = patched.get(top)
    if top in ("inputs", "parameters", "steps") and len(loc) > 1 and isinstance(loc[1], int):
        items = [dict(item) for item in section or []]
        item = items[loc[1]]
        if top == "inputs":
            item["default"] = None
        elif top == "parameters":
            item["value"] = TYPED_PLACEHOLDERS.get(item.get("dtype"), "0")
        elif len(loc) > 2 and loc[2] == "default":
            item["default"] = None
        else:
            return False
        patched[top] = items
        return True
    return False


def diagnose(document: Mapping[str, Any]) -> tuple[CompiledPlan | None, list[dict[str, Any]]]:
    """(compiled plan, []) for a valid document; (None, every diagnostic) otherwise.

    Document-shape problems (a missing currency, a parameter value of the wrong type, ...)
    are reported and then replaced by placeholders, so that the expression checks still run
    and the author sees every problem at once."""
    try:
        return _compile(PlanDocument.model_validate(dict(document)))
    except ValidationError as error:
        errors = error.errors()
    found = [_shape_diagnostic(document, err) for err in errors]
    patched = dict(document)
    if not all(_neutralise(patched, tuple(err["loc"])) for err in errors):
        return None, found
    payout_missing = not patched.get("payout")
    if payout_missing:
        patched["payout"] = (patched.get("steps") or [{}])[0].get("name", "")
    try:
        _, problems = _compile(PlanDocument.model_validate(patched))
    except ValidationError:
        return None, found
    if payout_missing:
        problems = [p for p in problems if p["code"] != "payout"]
    return None, found + problems


def _compile(doc: PlanDocument) -> tuple[CompiledPlan | None, list[dict[str, Any]]]:
    compiled, problems = check_plan(doc)
    return compiled, [_from_problem(p) for p in problems]


def _error(
    field: str, message: str, code: str, line: int | None = None, column: int | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"loc": ["body", field], "msg": message, "type": code}
    if line is not None:
        error.update(line=line, column=column)
    return error


def _parse_error(field: str, text: str | None) -> tuple[Any, dict[str, Any] | None]:
    if text is None:
        return None, None
    try:
        return parse(text), None
    except DslSyntaxError as err:
        return None, _error(field, f"{err.message}\n{err.excerpt}", err.code, err.line, err.column)


def step_errors(
    step: Mapping[str, Any], others: list[Mapping[str, Any]], declared: set[str]
) -> list[dict[str, Any]]:
    """PRD §15.2 checks of `step` (keys name, step_order, expr, condition_expr, outputs,
    default) against the plan's `others` steps and its `declared` input/parameter keys."""
    errors = []
    name = step["name"]
    problem = name_problem(name)
    if problem:
        errors.append(_error("name", problem, "invalid_name"))
    elif name in declared:
        errors.append(
            _error(
                "name",
                f"step '{name}' shadows the input or parameter of the same name",
                "shadowing",
            )
        )
    if any(other["name"] == name for other in others):
        errors.append(_error("name", f"a step named '{name}' already exists", "duplicate_step"))
    if any(other["step_order"] == step["step_order"] for other in others):
        errors.append(
            _error(
                "step_order",
                f"another step already has order {step['step_order']}",
                "duplicate_order",
            )
        )
    outputs = step.get("outputs")
    if outputs is not None and list(outputs) != [name]:
        errors.append(
            _error(
                "outputs",
                f'a step defines exactly one variable, its name: outputs must be ["{name}"]',
                "outputs",
            )
        )
    trees = []
    for field, key in (("expr", "expr"), ("condition_expr", "condition_expr")):
        tree, error = _parse_error(field, step.get(key))
        errors += [error] if error else []
        trees += [tree] if tree is not None else []
    default = step.get("default")
    if default is not None:
        errors += [e for e in [_parse_error("default", default)[1]] if e]
    if not errors:
        cycle = _cycle_through(name, {name: _reads(trees)} | _dependencies(others))
        if cycle:
            errors.append(_error("expr", "circular dependency: " + " -> ".join(cycle), "cycle"))
    return errors


def _reads(trees: list[Any]) -> set[str]:
    return set().union(*(names(tree) for tree in trees)) if trees else set()


def _dependencies(steps: list[Mapping[str, Any]]) -> dict[str, set[str]]:
    """What each existing step reads (unparseable expressions read nothing here)."""
    found = {}
    for step in steps:
        trees = []
        for key in ("expr", "condition_expr"):
            text = step.get(key)
            if text is not None:
                try:
                    trees.append(parse(text))
                except DslSyntaxError:
                    continue
        found[step["name"]] = _reads(trees)
    return found


def _cycle_through(start: str, reads: Mapping[str, set[str]]) -> list[str] | None:
    """A dependency path start -> ... -> start, or None (depth-first, deterministic)."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(reads.get(node, set()) & set(reads), reverse=True):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None
