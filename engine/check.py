"""Static validation of plans and expressions (ENGINE.md §3, §7; docs/engine.md §1, §6, §8).

Everything wrong with a plan is reported at once: each `Problem` names the step and the
field (expr, condition, default, payout, inputs, parameters, name) with line and column, so
the add-in can mark the exact cell. `check_plan` also produces the `CompiledPlan`: typed
trees, evaluation order (Kahn, ties by display order then name) and typed parameter values.
"""

from __future__ import annotations

import difflib
import heapq
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from engine.catalog import CATALOG
from engine.deferral import policy_problems
from engine.dsl.ast import (
    ARITHMETIC_OPS,
    COMPARISON_OPS,
    LOGICAL_OPS,
    Binary,
    Boolean,
    Call,
    DateLiteral,
    If,
    Name,
    Node,
    Number,
    String,
    Type,
    Unary,
    names,
)
from engine.dsl.errors import DslSyntaxError
from engine.dsl.parser import KEYWORDS, parse
from engine.hashing import plan_hash
from engine.model import (
    DTYPE_TO_TYPE,
    RESERVED_INPUTS,
    CompiledPlan,
    CompiledStep,
    PlanDocument,
    StepSpec,
    Value,
    coerce_value,
)

NAME_RULE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
ORDERED_TYPES = (Type.DECIMAL, Type.DATE)


@dataclass(frozen=True)
class Problem:
    """One validation problem. `step` is None for plan-level problems."""

    code: str
    message: str
    step: str | None = None
    field: str | None = None
    line: int | None = None
    column: int | None = None
    excerpt: str | None = None
    """For syntax errors: the source line with a caret under the column."""

    def __str__(self) -> str:
        where = []
        if self.step is not None:
            where.append(f"step '{self.step}'")
        if self.field is not None:
            where.append(self.field)
        if self.line is not None:
            where.append(f"line {self.line}, column {self.column}")
        prefix = ", ".join(where)
        text = f"{prefix}: {self.message}" if prefix else self.message
        return f"{text}\n{self.excerpt}" if self.excerpt else text


Report = Callable[[str, str, Node], None]
"""report(code, message, node): record a problem located at node's position."""


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _type_list(types: Iterable[Type | None]) -> str:
    return ", ".join(str(t) for t in types)


def infer(node: Node, scope: Mapping[str, Type | None], report: Report) -> Type | None:
    """Type `node` (setting `.type` on it and every descendant) against `scope`.

    Returns None when the type cannot be known; the reason has then been reported (or the
    name refers to something whose own problems were reported, e.g. a step in a cycle),
    so no cascade of follow-on errors is produced.
    """
    result = _infer(node, scope, report)
    node.type = result
    return result


def _infer(node: Node, scope: Mapping[str, Type | None], report: Report) -> Type | None:
    match node:
        case Number():
            return Type.DECIMAL
        case String():
            return Type.TEXT
        case Boolean():
            return Type.BOOL
        case DateLiteral():
            return Type.DATE
        case Name(ident=ident):
            if ident not in scope:
                report("unknown_name", f"unknown name '{ident}'{did_you_mean(ident, scope)}", node)
                return None
            return scope[ident]
        case Unary(op=op, operand=operand):
            operand_type = infer(operand, scope, report)
            if operand_type is not None and operand_type != Type.DECIMAL:
                report("type_error", f"unary '{op}' needs a decimal, got {operand_type}", node)
                return None
            return operand_type
        case Binary():
            return _infer_binary(node, scope, report)
        case If(cond=cond, then=then, else_=else_):
            cond_type = infer(cond, scope, report)
            then_type = infer(then, scope, report)
            else_type = infer(else_, scope, report)
            if cond_type is not None and cond_type != Type.BOOL:
                report("type_error", f"'if' condition must be bool, got {cond_type}", cond)
            if then_type is None or else_type is None:
                return None
            if then_type != else_type:
                report(
                    "type_error",
                    "'if' branches must have the same type, got "
                    f"{then_type} (then) and {else_type} (else)",
                    node,
                )
                return None
            return then_type if cond_type in (Type.BOOL, None) else None
        case Call():
            return _infer_call(node, scope, report)
    raise TypeError(f"not a DSL node: {node!r}")


def _infer_binary(node: Binary, scope: Mapping[str, Type | None], report: Report) -> Type | None:
    left = infer(node.left, scope, report)
    right = infer(node.right, scope, report)
    if left is None or right is None:
        return None
    op = node.op
    if op in ARITHMETIC_OPS:
        if left != Type.DECIMAL or right != Type.DECIMAL:
            report("type_error", f"'{op}' needs decimals, got {left} and {right}", node)
            return None
        return Type.DECIMAL
    if op in LOGICAL_OPS:
        if left != Type.BOOL or right != Type.BOOL:
            report("type_error", f"'{op}' needs bools, got {left} and {right}", node)
            return None
        return Type.BOOL
    if op in COMPARISON_OPS:
        if left != right:
            report(
                "type_error", f"'{op}' compares values of one type, got {left} and {right}", node
            )
            return None
        if op not in ("==", "!=") and left not in ORDERED_TYPES:
            report("type_error", f"'{op}' orders decimals or dates only, got {left}", node)
            return None
        return Type.BOOL
    raise TypeError(f"unknown operator {op!r}")


def _infer_call(node: Call, scope: Mapping[str, Type | None], report: Report) -> Type | None:
    spec = CATALOG[node.func]
    arg_types = [infer(arg, scope, report) for arg in node.args]
    count = len(node.args)
    if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
        report(
            "arity",
            f"{spec.name}() takes {spec.arity_text()} ({spec.signature()}), got {count}",
            node,
        )
        return None
    ok = True
    for index, (arg, arg_type) in enumerate(zip(node.args, arg_types, strict=True)):
        param = spec.param_for(index)
        if arg_type is not None and arg_type not in param.types:
            allowed = " or ".join(sorted(str(t) for t in param.types))
            report(
                "type_error",
                f"{spec.name}() argument '{param.name}' must be {allowed}, got {arg_type}",
                arg,
            )
            ok = False
        if index in spec.literal_int_args:
            low, high = spec.literal_int_args[index]
            if not (
                isinstance(arg, Number)
                and arg.value == arg.value.to_integral_value()
                and low <= arg.value <= high
            ):
                report(
                    "type_error",
                    f"{spec.name}() argument '{param.name}' must be a whole-"
                    f"number literal from {low} to {high}",
                    arg,
                )
                ok = False
    if not ok or any(t is None for t in arg_types):
        return None
    if spec.same_type and len(set(arg_types)) > 1:
        report(
            "type_error",
            f"{spec.name}() arguments must all have one type, got {_type_list(arg_types)}",
            node,
        )
        return None
    return spec.result_type(arg_types)  # type: ignore[arg-type]


def check_expression(
    text: str, scope_types: Mapping[str, Type]
) -> tuple[Node | None, list[Problem]]:
    """Parse and type one expression against `scope_types` (name → type).

    Returns the typed tree (None on a syntax error) and every problem found.
    """
    problems: list[Problem] = []
    node = _parse_into(text, problems, None, "expr")
    if node is not None:
        infer(node, scope_types, _reporter(problems, None, "expr"))
    return node, problems


def _reporter(problems: list[Problem], step: str | None, field: str) -> Report:
    def report(code: str, message: str, node: Node) -> None:
        problems.append(Problem(code, message, step, field, node.pos.line, node.pos.column))

    return report


def _parse_into(text: str, problems: list[Problem], step: str | None, field: str) -> Node | None:
    try:
        return parse(text)
    except DslSyntaxError as error:
        problems.append(
            Problem(error.code, error.message, step, field, error.line, error.column, error.excerpt)
        )
        return None


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a step, input or parameter (reserved inputs aside: callers
    word that case themselves), or None if it can."""
    if name.startswith("__"):
        return f"'{name}': names starting with '__' are not allowed"
    if not NAME_RULE.fullmatch(name):
        return f"'{name}' is not a valid name (lower case letters, digits, '_'; up to 63)"
    if name in KEYWORDS:
        return f"'{name}' is a keyword"
    if name in CATALOG:
        return f"'{name}' is a catalog function"
    return None


@dataclass
class _Declarations:
    """Input and parameter names with their types, after their own checks."""

    types: dict[str, Type]
    scopes: dict[str, str]
    parameters: dict[str, tuple[Type, Value]]


def _check_declarations(
    doc: PlanDocument, overrides: Mapping[str, Any] | None, problems: list[Problem]
) -> _Declarations:
    types: dict[str, Type] = {key: Type.TEXT for key in RESERVED_INPUTS}
    scopes = {key: "employee" for key in RESERVED_INPUTS}
    parameters: dict[str, tuple[Type, Value]] = {}
    for index, spec in enumerate(doc.inputs):
        where = f"inputs[{index}] '{spec.key}'"
        if _claim(spec.key, where, types, "inputs", problems):
            types[spec.key] = DTYPE_TO_TYPE[spec.dtype]
            scopes[spec.key] = spec.scope
    declared_dtypes: dict[str, str] = {}
    for index, spec in enumerate(doc.parameters):
        where = f"parameters[{index}] '{spec.key}'"
        if _claim(spec.key, where, types, "parameters", problems):
            types[spec.key] = DTYPE_TO_TYPE[spec.dtype]
            parameters[spec.key] = (DTYPE_TO_TYPE[spec.dtype], spec.value)
            declared_dtypes[spec.key] = spec.dtype
    for key, raw in (overrides or {}).items():
        if key not in declared_dtypes:
            problems.append(
                Problem(
                    "unknown_parameter",
                    f"override of unknown parameter '{key}'{did_you_mean(key, declared_dtypes)}",
                    field="parameters",
                )
            )
            continue
        try:
            value = coerce_value(declared_dtypes[key], raw)
        except ValueError as error:
            problems.append(
                Problem(
                    "invalid_value", f"override of parameter '{key}': {error}", field="parameters"
                )
            )
            continue
        parameters[key] = (parameters[key][0], value)
    return _Declarations(types, scopes, parameters)


def _claim(
    key: str, where: str, taken: Mapping[str, Type], field: str, problems: list[Problem]
) -> bool:
    """Check an input/parameter key is a valid, unused name; report and return False if not."""
    if key in RESERVED_INPUTS:
        problems.append(
            Problem(
                "reserved_name",
                f"{where}: '{key}' is reserved (it is always available as a text input)",
                field=field,
            )
        )
        return False
    reason = name_problem(key)
    if reason:
        problems.append(Problem("invalid_name", f"{where}: {reason}", field=field))
        return False
    if key in taken:
        problems.append(
            Problem("duplicate_name", f"{where}: '{key}' is declared twice", field=field)
        )
        return False
    return True


def check_plan(
    doc: PlanDocument, parameter_overrides: Mapping[str, Any] | None = None
) -> tuple[CompiledPlan | None, list[Problem]]:
    """Run every check; returns (compiled plan, []) or (None, every problem)."""
    problems: list[Problem] = []
    declared = _check_declarations(doc, parameter_overrides, problems)
    specs = _unique_steps(doc.steps, declared.types, problems)
    trees = {spec.name: _parse_step(spec, problems) for spec in specs}
    step_names = set(trees)
    dependencies = {
        name: frozenset(
            n for tree in parsed if tree is not None for n in names(tree) if n in step_names
        )
        for name, parsed in trees.items()
    }
    display = tuple(spec.name for spec in sorted(specs, key=lambda s: (s.order, s.name)))
    order, cyclic = evaluation_order(display, dependencies)
    _report_cycles(display, dependencies, cyclic, problems)
    scope: dict[str, Type | None] = dict(declared.types)
    scope.update({name: None for name in cyclic})
    by_name = {spec.name: spec for spec in specs}
    compiled_steps = []
    for name in order:
        step = _type_step(by_name[name], trees[name], scope, problems)
        scope[name] = step.type if step else None
        if step:
            compiled_steps.append(step)
    _check_payout(doc.payout, step_names, scope, problems)
    _check_deferral(doc, scope, problems)
    if problems:
        return None, problems
    return CompiledPlan(
        document=doc,
        steps=tuple(compiled_steps),
        display_order=display,
        input_types={k: t for k, t in declared.types.items() if k not in declared.parameters},
        input_scopes=declared.scopes,
        parameters=declared.parameters,
        payout=doc.payout,
        dependencies=dependencies,
        plan_hash=plan_hash(doc),
    ), []


def _check_deferral(doc: PlanDocument, scope: Mapping[str, Type | None],
                    problems: list[Problem]) -> None:
    """The deferral policy's references to steps and the plan period (docs/deferrals.md)."""
    if doc.deferral is None:
        return
    step_types = {spec.name: (scope[spec.name].value if scope.get(spec.name) else "unknown")
                  for spec in doc.steps if spec.name in scope}
    for field, message in policy_problems(doc.deferral, step_types, doc.effective_to):
        problems.append(Problem("deferral", message, field=field))


def _unique_steps(
    steps: list[StepSpec], declared: Mapping[str, Type], problems: list[Problem]
) -> list[StepSpec]:
    """Steps with a usable, unique name; the others are reported and dropped."""
    seen: set[str] = set()
    kept = []
    for spec in steps:
        reason = None
        code = "invalid_name"
        if spec.name in RESERVED_INPUTS:
            code, reason = "reserved_name", f"'{spec.name}' is a reserved input name"
        elif spec.name in declared:
            code, reason = (
                "shadowing",
                (f"step '{spec.name}' shadows the input or parameter of the same name"),
            )
        elif spec.name in seen:
            code, reason = "duplicate_step", f"duplicate step name '{spec.name}'"
        else:
            reason = name_problem(spec.name)
        if reason:
            problems.append(Problem(code, reason, spec.name, "name"))
            continue
        seen.add(spec.name)
        kept.append(spec)
    return kept


def _parse_step(spec: StepSpec, problems: list[Problem]) -> tuple[Node | None, Node | None]:
    expr = _parse_into(spec.expr, problems, spec.name, "expr")
    condition = None
    if spec.condition is not None:
        condition = _parse_into(spec.condition, problems, spec.name, "condition")
    return expr, condition


def evaluation_order(
    display: tuple[str, ...], dependencies: Mapping[str, frozenset[str]]
) -> tuple[list[str], set[str]]:
    """Kahn's topological sort, ties broken by display position (display order, name).

    Returns the ordered steps and the set of steps left over because they are on, or depend
    on, a cycle.
    """
    rank = {name: index for index, name in enumerate(display)}
    waiting = {name: len(dependencies[name]) for name in display}
    readers: dict[str, list[str]] = {name: [] for name in display}
    for name in display:
        for dependency in dependencies[name]:
            readers[dependency].append(name)
    ready = [(rank[name], name) for name in display if waiting[name] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for reader in readers[name]:
            waiting[reader] -= 1
            if waiting[reader] == 0:
                heapq.heappush(ready, (rank[reader], reader))
    return order, set(display) - set(order)


def _report_cycles(
    display: tuple[str, ...],
    dependencies: Mapping[str, frozenset[str]],
    leftover: set[str],
    problems: list[Problem],
) -> None:
    """One problem per distinct cycle, naming it `a -> b -> a`, on its first step."""
    reported: set[frozenset[str]] = set()
    for start in (name for name in display if name in leftover):
        cycle = _find_cycle(start, dependencies, leftover)
        if cycle is None or frozenset(cycle) in reported:
            continue
        reported.add(frozenset(cycle))
        first = min(cycle, key=display.index)
        rotated = cycle[cycle.index(first) :] + cycle[: cycle.index(first)]
        path = " -> ".join([*rotated, first])
        problems.append(Problem("cycle", f"circular dependency: {path}", first, "expr"))


def _find_cycle(
    start: str, dependencies: Mapping[str, frozenset[str]], within: set[str]
) -> list[str] | None:
    """A cycle through `start` (each step reading the next), or None if start only
    depends on a cycle without being on one."""
    stack = [(start, [start])]
    visited: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(dependencies[node] & within, reverse=True):
            if nxt == start:
                return path
            if nxt not in visited:
                visited.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def _type_step(
    spec: StepSpec,
    parsed: tuple[Node | None, Node | None],
    scope: Mapping[str, Type | None],
    problems: list[Problem],
) -> CompiledStep | None:
    expr, condition = parsed
    before = len(problems)
    expr_type = infer(expr, scope, _reporter(problems, spec.name, "expr")) if expr else None
    if condition is not None:
        cond_type = infer(condition, scope, _reporter(problems, spec.name, "condition"))
        if cond_type is not None and cond_type != Type.BOOL:
            problems.append(
                Problem(
                    "type_error",
                    f"condition must be bool, got {cond_type}",
                    spec.name,
                    "condition",
                    condition.pos.line,
                    condition.pos.column,
                )
            )
    if expr_type is None:
        return None
    default = _default_literal(spec, expr_type, problems)
    if len(problems) > before:
        return None
    reads = frozenset().union(*(names(tree) for tree in parsed if tree is not None))
    return CompiledStep(spec.name, spec.order, expr, condition, default, expr_type, reads)


_OMITTED_DEFAULTS: dict[Type, Node | None] = {
    Type.DECIMAL: Number(Decimal(0)),
    Type.BOOL: Boolean(False),
    Type.TEXT: String(""),
    Type.DATE: None,
}


def _default_literal(spec: StepSpec, step_type: Type, problems: list[Problem]) -> Node | None:
    """The step's default as a typed literal node (docs/engine.md §6)."""
    if spec.default is None:
        node = _OMITTED_DEFAULTS[step_type]
        if node is not None:
            node = type(node)(node.value, type=step_type)  # type: ignore[call-arg, attr-defined]
        return node
    parsed = _parse_into(spec.default, problems, spec.name, "default")
    if parsed is None:
        return None
    literal = _as_literal(parsed, step_type)
    if literal is None:
        problems.append(
            Problem(
                "invalid_default",
                f"default must be a {step_type} literal "
                f"({_DEFAULT_HINTS[step_type]}), got {spec.default!r}",
                spec.name,
                "default",
                parsed.pos.line,
                parsed.pos.column,
            )
        )
    return literal


_DEFAULT_HINTS = {
    Type.DECIMAL: "a number like 0 or -1.5",
    Type.BOOL: "true or false",
    Type.TEXT: 'double-quoted text like "none"',
    Type.DATE: 'a quoted ISO date like "2025-01-01"',
}


def _as_literal(node: Node, step_type: Type) -> Node | None:
    """`node` as a literal of `step_type`, folding a leading minus into the number.

    The fold is exact (`copy_negate`): Decimal arithmetic would round a 38-digit literal to
    the thread's context precision (28 digits by default). Literals are never negative, so
    only a zero is left as it is (no -0)."""
    pos = node.pos
    if step_type == Type.DECIMAL:
        if isinstance(node, Unary) and isinstance(node.operand, Number):
            operand = node.operand.value
            negate = node.op == "-" and not operand.is_zero()
            return Number(operand.copy_negate() if negate else operand, pos=pos, type=Type.DECIMAL)
        if isinstance(node, Number):
            return Number(node.value, pos=pos, type=Type.DECIMAL)
        return None
    if step_type == Type.BOOL and isinstance(node, Boolean):
        return Boolean(node.value, pos=pos, type=Type.BOOL)
    if step_type == Type.TEXT and isinstance(node, String):
        return String(node.value, pos=pos, type=Type.TEXT)
    if step_type == Type.DATE and isinstance(node, String):
        try:
            return DateLiteral(date.fromisoformat(node.value), pos=pos, type=Type.DATE)
        except ValueError:
            return None
    return None


def _check_payout(
    payout: str, step_names: set[str], scope: Mapping[str, Type | None], problems: list[Problem]
) -> None:
    if payout not in step_names:
        problems.append(
            Problem(
                "payout",
                f"payout '{payout}' is not a step{did_you_mean(payout, step_names)}",
                field="payout",
            )
        )
    elif scope.get(payout) not in (Type.DECIMAL, None):
        problems.append(
            Problem(
                "payout",
                f"payout step '{payout}' must be decimal, got {scope[payout]}",
                payout,
                "payout",
            )
        )
