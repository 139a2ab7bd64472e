"""The individual statement as data: everything a renderer (HTML/PDF, XLSX) shows.

`build_statement` joins a compiled plan, one employee's calculation tape (ENGINE.md §8,
`Tape.to_dict()`), the employee's inputs, the run's metadata and the tenant's branding into a
`Statement` of typed values. Renderers only lay it out, so the PDF and the XLSX cannot
disagree. The tape must belong to the plan (same plan hash) or building fails loudly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from engine.deferral import DeferralPolicy
from engine.dsl.ast import Type
from engine.plan import CompiledPlan
from server.modules.reports.formatting import colour, display, money, safe_svg, typed_value
from server.modules.reports.localize import DEFAULT_LOCALE, is_known_locale

DEFERRED_STEP = "deferred"
"""A step with this name is the deferred part of the payout (plan convention)."""
CASH_STEP = "cash"
"""A step with this name is the part paid now (plan convention)."""

FINAL_STATE = "finalized"
STATE_LABELS = {
    "queued": "Queued",
    "running": "Running",
    "draft": "Draft, awaiting manager approval",
    "manager_approved": "Manager approved, awaiting HR",
    "hr_approved": "HR approved, awaiting finance",
    "finance_approved": "Finance approved, awaiting finalisation",
    "finalized": "Finalized",
    "failed": "Failed",
}
DEFAULT_PRIMARY = "#1F3A5F"
DEFAULT_ACCENT = "#C8A24A"


@dataclass(frozen=True)
class Branding:
    """Everything a tenant sets about how its documents look, in one place: name, colours
    (validated `#RRGGBB`; anything else falls back), an optional SVG logo (checked by
    `formatting.safe_svg`), the locale numbers and dates follow, and whether statements
    carry the auditor appendix (the full calculation tape with expressions)."""

    tenant_name: str
    primary: str = DEFAULT_PRIMARY
    accent: str = DEFAULT_ACCENT
    logo_svg: str | None = None
    locale: str = DEFAULT_LOCALE
    appendix: bool = False

    @classmethod
    def from_tenant(cls, name: str, metadata: Mapping[str, Any] | None) -> Branding:
        """From `comp.tenants` (`metadata.branding = {"primary": "#..", "accent": "#..",
        "logo_svg": "<svg ...>", "locale": "de-DE", "statement_appendix": true}`)."""
        brand = (metadata or {}).get("branding") or {}
        if not isinstance(brand, Mapping):
            brand = {}
        locale = brand.get("locale")
        return cls(name, colour(brand.get("primary"), DEFAULT_PRIMARY),
                   colour(brand.get("accent"), DEFAULT_ACCENT),
                   safe_svg(brand.get("logo_svg")),
                   locale if is_known_locale(locale) else DEFAULT_LOCALE,
                   brand.get("statement_appendix") is True)


@dataclass(frozen=True)
class Approval:
    """One approval-history entry: the state reached, by whom (`by`: the approver's name
    when known, else role and user id), when (ISO timestamp)."""

    state: str
    by: str | None
    at: str | None
    role: str | None = None


@dataclass(frozen=True)
class RunInfo:
    """What a statement says about the run it comes from."""

    run_id: str
    status: str
    snapshot_hash: str
    results_hash: str | None = None
    scenario_name: str | None = None
    history: tuple[Approval, ...] = ()

    @property
    def finalized(self) -> bool:
        return self.status == FINAL_STATE

    @property
    def status_label(self) -> str:
        return STATE_LABELS.get(self.status, self.status)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], names: Mapping[str, str] | None = None
                  ) -> RunInfo:
        """From a run row/dict: `id`, `status`, `snapshot_hash`, `results_hash`,
        `scenario_name`, `approvals_state = {"state", "history": [{to_state, actor_role,
        actor_user_id, at}]}` (the approvals module's entries). `names` maps user ids to
        the names statements print (display name, else e-mail)."""
        approvals = data.get("approvals_state") or {}
        history = tuple(
            Approval(str(entry.get("to_state") or entry.get("state") or ""),
                     _actor(entry, names or {}),
                     None if entry.get("at") is None else str(entry.get("at")),
                     None if entry.get("actor_role") is None else str(entry["actor_role"]))
            for entry in approvals.get("history", [])
        )
        return cls(
            run_id=str(data["id"]),
            status=str(data["status"]),
            snapshot_hash=str(data["snapshot_hash"]),
            results_hash=data.get("results_hash"),
            scenario_name=data.get("scenario_name"),
            history=history,
        )


def _actor(entry: Mapping[str, Any], names: Mapping[str, str]) -> str | None:
    role, user = entry.get("actor_role"), entry.get("actor_user_id")
    if role is None and user is None:
        return None
    if user is not None and names.get(str(user)):
        return names[str(user)]
    return " ".join(str(part) for part in (role, f"({user})" if user else None) if part)


@dataclass(frozen=True)
class Line:
    """A labelled value (input, parameter, payout); `fmt` is the plan's display format."""

    key: str
    label: str
    value: Any
    kind: Type
    fmt: str | None = None

    @property
    def text(self) -> str:
        return display(self.value)


@dataclass(frozen=True)
class StepLine:
    """One step of the tape, typed."""

    order: int
    name: str
    expr: str
    condition: str | None
    condition_value: bool | None
    value: Any
    kind: Type
    notes: str
    diagnostics: tuple[str, ...] = ()
    label: str = ""
    fmt: str | None = None

    @property
    def text(self) -> str:
        return display(self.value)

    @property
    def guard_text(self) -> str:
        if self.condition is None:
            return ""
        return f"{self.condition} → {display(self.condition_value)}"


@dataclass(frozen=True)
class Statement:
    branding: Branding
    run: RunInfo
    plan_name: str
    plan_version: int
    plan_hash: str
    currency: str
    effective_from: date
    effective_to: date | None
    employee_ref: str
    fund_ref: str | None
    inputs: tuple[Line, ...]
    parameters: tuple[Line, ...]
    steps: tuple[StepLine, ...]
    payout: Line
    deferred: Line | None
    cash: Line | None = None
    deferral_policy: DeferralPolicy | None = None

    @property
    def draft(self) -> bool:
        """Everything before finalisation carries the DRAFT watermark."""
        return not self.run.finalized

    @property
    def payout_text(self) -> str:
        return money(self.payout.value, self.currency)

    @property
    def deferred_text(self) -> str:
        return money(self.deferred.value if self.deferred else None, self.currency)

    @property
    def period(self) -> str:
        end = self.effective_to.isoformat() if self.effective_to else "open"
        return f"{self.effective_from.isoformat()} to {end}"


def _input_lines(plan: CompiledPlan, inputs: Mapping[str, Any]) -> tuple[Line, ...]:
    lines = []
    for spec in plan.document.inputs:
        kind = plan.input_types.get(spec.key)
        if kind is None:  # declared but unused by any step: the engine never loaded it
            continue
        try:
            value = typed_value(kind, inputs.get(spec.key))
        except ValueError as error:
            raise ValueError(f"input '{spec.key}': {error}") from None
        lines.append(Line(spec.key, spec.label or spec.key, value, kind, spec.format))
    return tuple(lines)


def inputs_from_tape(plan: CompiledPlan, tape: Mapping[str, Any]) -> dict[str, Any]:
    """The employee's input values as read by the steps (every input a step uses)."""
    found: dict[str, Any] = {}
    for entry in tape["steps"]:
        for name, raw in entry["bindings"].items():
            if name in plan.input_types or name in ("employee_ref", "fund_ref"):
                found.setdefault(name, raw)
    return found


def _parameter_lines(plan: CompiledPlan) -> tuple[Line, ...]:
    specs = {spec.key: spec for spec in plan.document.parameters}
    return tuple(
        Line(key, (specs[key].label if key in specs else None) or humanize(key), value, kind,
             specs[key].format if key in specs else None)
        for key, (kind, value) in plan.parameters.items()
    )


def humanize(name: str) -> str:
    """A readable fallback label for a step or parameter without one: `fund_factor` ->
    `Fund factor`."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else name


def _step_lines(plan: CompiledPlan, tape: Mapping[str, Any]) -> tuple[StepLine, ...]:
    specs = {spec.name: spec for spec in plan.document.steps}
    kinds = {step.name: step.type for step in plan.steps}
    lines = []
    for entry in tape["steps"]:
        name = entry["step"]
        if name not in kinds:
            raise ValueError(f"tape step '{name}' is not a step of plan '{plan.document.name}'")
        try:
            value = typed_value(kinds[name], entry["result"])
        except ValueError as error:
            raise ValueError(f"step '{name}': {error}") from None
        lines.append(
            StepLine(
                order=int(entry["order"]),
                name=name,
                expr=entry["expr"],
                condition=entry.get("condition"),
                condition_value=entry.get("condition_value"),
                value=value,
                kind=kinds[name],
                notes=specs[name].notes if name in specs else "",
                diagnostics=tuple(str(d.get("message", d)) for d in entry.get("diagnostics", [])),
                label=(specs[name].label if name in specs else None) or humanize(name),
                fmt=specs[name].format if name in specs else None,
            )
        )
    return tuple(lines)


def build_statement(
    plan: CompiledPlan,
    tape: Mapping[str, Any],
    run: RunInfo,
    branding: Branding,
    inputs: Mapping[str, Any] | None = None,
) -> Statement:
    """One employee's statement. `inputs` (key -> JSON value) defaults to the inputs the
    steps read, taken from the tape's bindings."""
    if tape.get("plan_hash") != plan.plan_hash:
        raise ValueError(
            f"the tape of employee '{tape.get('employee_ref')}' was computed with plan hash "
            f"{tape.get('plan_hash')}, not {plan.plan_hash}"
        )
    values = dict(inputs) if inputs is not None else inputs_from_tape(plan, tape)
    steps = _step_lines(plan, tape)
    by_name = {line.name: line for line in steps}
    payout_step = by_name[plan.payout]
    document = plan.document
    deferred, cash = _deferred_and_cash(document.deferral, by_name)
    return Statement(
        branding=branding,
        run=run,
        plan_name=document.name,
        plan_version=document.version,
        plan_hash=plan.plan_hash,
        currency=document.currency,
        effective_from=document.effective_from,
        effective_to=document.effective_to,
        employee_ref=str(tape["employee_ref"]),
        fund_ref=None if values.get("fund_ref") is None else str(values["fund_ref"]),
        inputs=_input_lines(plan, values),
        parameters=_parameter_lines(plan),
        steps=steps,
        payout=Line(plan.payout, payout_step.label, payout_step.value, payout_step.kind, "money"),
        deferred=deferred,
        cash=cash,
        deferral_policy=document.deferral,
    )


def _money_line(step: StepLine | None, key: str) -> Line | None:
    if step is None or step.kind is not Type.DECIMAL:
        return None
    return Line(key, step.label, step.value, step.kind, "money")


def _deferred_and_cash(policy: DeferralPolicy | None, by_name: Mapping[str, StepLine]
                       ) -> tuple[Line | None, Line | None]:
    """The deferred part and the part paid now: the plan's deferral policy names the steps
    (the ledger writes awards from the same ones at finalize); without a policy, the steps
    named `deferred` and `cash` (plan convention). With a policy and no `cash` step, the
    part paid now is the variable pay less the deferred part (exact Decimal)."""
    if policy is None:
        return (_money_line(by_name.get(DEFERRED_STEP), DEFERRED_STEP),
                _money_line(by_name.get(CASH_STEP), CASH_STEP))
    deferred = _money_line(by_name.get(policy.deferred_step), DEFERRED_STEP)
    cash = _money_line(by_name.get(CASH_STEP), CASH_STEP)
    pay = by_name.get(policy.variable_pay_step)
    if cash is None and deferred is not None and pay is not None and pay.value is not None \
            and deferred.value is not None:
        cash = Line(CASH_STEP, CASH_STEP, pay.value - deferred.value, Type.DECIMAL, "money")
    return deferred, cash


def approval_rows(run: RunInfo) -> Sequence[tuple[str, str, str]]:
    """(state, by, at) rows for the approval history table."""
    return [(STATE_LABELS.get(a.state, a.state), a.by or "", a.at or "") for a in run.history]


__all__ = [
    "Approval",
    "Branding",
    "Line",
    "RunInfo",
    "Statement",
    "StepLine",
    "approval_rows",
    "build_statement",
    "inputs_from_tape",
]
