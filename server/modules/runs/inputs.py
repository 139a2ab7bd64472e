"""What a run needs from other modules, behind one narrow interface.

- `locked_plan(session, plan_id)`: the locked plan and its document, through
  `plans.service.get_locked_plan` (404 unknown, 409 not locked).
- `ready_upload(session, settings, upload_id, kind)`: a ready upload's typed, normalised
  Parquet (path, SHA-256 of its plaintext, mapping, the tenant's cipher that opens it:
  the data is sealed at rest, decrypted only in memory) through `uploads.service`
  (404 / 409 otherwise; 410 naming the upload when its data is missing from disk).
- `align_inputs(plan, employees, funds)`: the typed frame the engine evaluates, built from
  those frames exactly as `engine.data.load_inputs` builds it from CSV text (same column
  order, same defaults, same errors), so a run and `paysheet eval` see the same inputs.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from typing import Any

import polars as pl
from sqlalchemy.orm import Session

from engine.backends.base import POLARS_TYPES
from engine.data import DataError, DataProblem
from engine.dsl.ast import Type
from engine.plan import CompiledPlan, PlanDocument, compile_plan
from server.errors import Conflict
from server.modules.keys import service as keys
from server.modules.plans import service as plans
from server.modules.uploads import service as uploads
from server.settings import Settings

DEC = pl.Decimal(38, 10)
MAX_CACHED_PLANS = 64


@dataclass(frozen=True)
class LockedPlan:
    id: uuid.UUID
    name: str
    version: int
    plan_hash: str
    document: PlanDocument


@dataclass(frozen=True)
class UploadData:
    """A ready upload: where its typed frame is (column names = input keys), its hash and
    mapping. The frame is read only when a run executes (`read_frame`)."""

    id: uuid.UUID
    kind: str
    path: Path
    data_sha256: str
    mapping: dict[str, Any]
    filename: str = ""
    cipher: keys.TenantCipher | None = None

    def read_frame(self) -> pl.DataFrame:
        """The typed frame; refuses data whose bytes no longer match the recorded hash,
        and names the upload (410) when its data is gone."""
        assert self.cipher is not None, "ready_upload() gives the tenant's cipher"
        payload = uploads.read_typed_bytes(self.path, self.id, self.filename, self.cipher)
        if hashlib.sha256(payload).hexdigest() != self.data_sha256:
            raise Conflict(f"upload {self.id} ('{self.filename}'): typed data does not "
                           "match its recorded hash")
        return pl.read_parquet(payload)


@dataclass(frozen=True)
class RunInputs:
    """Everything a run evaluates: the aligned frame, the data hash and the mapping."""

    frame: pl.DataFrame
    data_sha256: str
    mapping: dict[str, Any]


def locked_plan(session: Session, plan_id: uuid.UUID) -> LockedPlan:
    """The plan if it exists for this tenant and is locked (404 / 409 otherwise)."""
    row, compiled = plans.get_locked_plan(session, plan_id)
    return LockedPlan(row.id, row.name, row.version, row.plan_hash or compiled.plan_hash,
                      compiled.document)


def ready_upload(session: Session, settings: Settings, upload_id: uuid.UUID,
                 kind: str) -> UploadData:
    """Where a ready upload of `kind` keeps its typed data (404 / 409 otherwise)."""
    upload = uploads.get_upload(session, upload_id)
    if upload.kind != kind:
        raise Conflict(f"upload {upload_id} holds {upload.kind}, not {kind}")
    if upload.status != "ready":
        raise Conflict(f"upload {upload_id} is {upload.status}: only a ready upload can be run")
    digest = ((upload.metadata_ or {}).get("parquet") or {}).get("sha256")
    if not digest:
        raise Conflict(f"upload {upload_id} has no typed data recorded")
    path = uploads.typed_data_path(settings, upload)
    return UploadData(upload.id, upload.kind, path, digest, dict(upload.mapping or {}),
                      upload.filename, keys.cipher(session, settings))


def combined_data_hash(employees: UploadData, funds: UploadData | None) -> str:
    """The employees file's hash alone, or one hash over both files' hashes."""
    if funds is None:
        return employees.data_sha256
    material = f"employees:{employees.data_sha256}\nfunds:{funds.data_sha256}\n"
    return hashlib.sha256(material.encode()).hexdigest()


def combined_mapping(employees: UploadData, funds: UploadData | None) -> dict[str, Any]:
    mapping = {"employees": employees.mapping}
    if funds is not None:
        mapping["funds"] = funds.mapping
    return mapping


class _PlanCache:
    """Compiled plans by (plan hash, version number).

    The plan hash leaves the version number out (ENGINE.md §9: a new version locked unchanged
    keeps its hash), but the compiled plan carries its whole document, version included, and
    statements, the audit workbook and the export manifest read it from there. Keyed by the
    hash alone, a run of v2 would be reported as v1 whenever v1 had been compiled first.
    """

    def __init__(self, size: int) -> None:
        self._plans: OrderedDict[tuple[str, int], CompiledPlan] = OrderedDict()
        self._size = size
        self._lock = Lock()
        self.hits = 0

    def get(self, document: PlanDocument, plan_hash: str) -> CompiledPlan:
        key = (plan_hash, document.version)
        with self._lock:
            if key in self._plans:
                self._plans.move_to_end(key)
                self.hits += 1
                return self._plans[key]
        compiled = compile_plan(document)
        with self._lock:
            self._plans[key] = compiled
            while len(self._plans) > self._size:
                self._plans.popitem(last=False)
        return compiled


PLAN_CACHE = _PlanCache(MAX_CACHED_PLANS)


def _cast(frame: pl.DataFrame, key: str, kind: Type, file: str,
          problems: list[DataProblem]) -> pl.Expr:
    dtype = frame.schema[key]
    wanted = POLARS_TYPES[kind]
    if kind == Type.DECIMAL and dtype.is_float():
        problems.append(DataProblem(file, None, key, None,
                                    "floating-point column: money is never a float"))
        return pl.lit(None, dtype=wanted).alias(key)
    compatible = (
        (kind == Type.DECIMAL and (dtype.is_decimal() or dtype.is_integer()))
        or dtype == wanted or dtype == pl.Null
    )
    if not compatible:
        problems.append(DataProblem(file, None, key, None,
                                    f"column is {dtype}, the plan needs {kind.value}"))
        return pl.lit(None, dtype=wanted).alias(key)
    return pl.col(key).cast(wanted).alias(key)


def _typed_columns(frame: pl.DataFrame, specs: list[Any], plan: CompiledPlan, file: str,
                   problems: list[DataProblem]) -> list[pl.Expr]:
    exprs = []
    for spec in specs:
        kind = plan.input_types[spec.key]
        if spec.key not in frame.columns:
            if spec.default is None and spec.required:
                problems.append(DataProblem(file, None, spec.key, None,
                                            "required column is missing"))
            exprs.append(pl.lit(spec.default, dtype=POLARS_TYPES[kind]).alias(spec.key))
            continue
        expr = _cast(frame, spec.key, kind, file, problems)
        if spec.default is not None:
            expr = expr.fill_null(pl.lit(spec.default, dtype=POLARS_TYPES[kind]))
        elif spec.required:
            missing = frame.with_row_index("__row", offset=2).filter(pl.col(spec.key).is_null())
            for line in missing["__row"].head(50).to_list():
                problems.append(DataProblem(file, line, spec.key, None,
                                            "required value is empty"))
        exprs.append(expr.alias(spec.key))
    return exprs


def _refs(frame: pl.DataFrame, file: str, problems: list[DataProblem]) -> None:
    if "employee_ref" not in frame.columns:
        problems.append(DataProblem(file, None, "employee_ref", None,
                                    "required column is missing"))


def align_inputs(plan: CompiledPlan, employees: pl.DataFrame,
                 funds: pl.DataFrame | None = None) -> pl.DataFrame:
    """employee_ref, fund_ref, then every declared input in order, typed for the engine.

    Fund-scope inputs come from `funds` (joined on fund_ref) when given, else from the
    employees frame. Raises DataError listing every problem (missing column, wrong type,
    empty required cell, unknown fund).
    """
    problems: list[DataProblem] = []
    _refs(employees, "employees", problems)
    specs = [spec for spec in plan.document.inputs if spec.key in plan.input_types]
    fund_specs = [s for s in specs if s.scope == "fund"] if funds is not None else []
    employee_specs = [s for s in specs if s not in fund_specs]
    refs = [
        pl.col(c).cast(pl.String) if c in employees.columns
        else pl.lit(None, dtype=pl.String).alias(c)
        for c in ("employee_ref", "fund_ref")
    ]
    columns = _typed_columns(employees, employee_specs, plan, "employees", problems)
    result = employees.select(*refs, *columns) if not problems else None
    if funds is not None and result is not None:
        result = _join_funds(result, plan, funds, fund_specs, problems)
    if problems or result is None:
        raise DataError(problems)
    return result.select(["employee_ref", "fund_ref", *(s.key for s in specs)])


def _join_funds(result: pl.DataFrame, plan: CompiledPlan, funds: pl.DataFrame,
                fund_specs: list[Any], problems: list[DataProblem]) -> pl.DataFrame:
    if "fund_ref" not in funds.columns:
        problems.append(DataProblem("funds", None, "fund_ref", None, "required column is missing"))
        return result
    typed = funds.select(pl.col("fund_ref").cast(pl.String),
                         *_typed_columns(funds, fund_specs, plan, "funds", problems))
    known = typed["fund_ref"].drop_nulls().implode()
    unknown = result.with_row_index("__row", offset=2).filter(
        pl.col("fund_ref").is_not_null() & ~pl.col("fund_ref").is_in(known))
    for line, value in unknown.select("__row", "fund_ref").head(50).iter_rows():
        problems.append(DataProblem("employees", line, "fund_ref", value,
                                    "unknown fund_ref (not in the funds file)"))
    typed = typed.unique("fund_ref", keep="first", maintain_order=True)
    return result.join(typed, on="fund_ref", how="left", maintain_order="left")
