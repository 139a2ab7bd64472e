"""Loading input data: CSV files to the typed frame every backend evaluates.

Everything is read as text first and checked column at a time with Polars expressions, so a
million-row file is validated in well under a second and EVERY problem is reported, each
with its file, 1-based line (the header is line 1), column, raw value and what is wrong.
Numbers are never parsed through a float: text goes straight to Decimal(38,10) after the
syntax, scale (at most 10 decimals) and range (|x| < 1e28) checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import polars as pl

from engine.backends.base import POLARS_TYPES
from engine.dsl.ast import Type
from engine.plan import CompiledPlan, InputSpec

DEC = pl.Decimal(38, 10)
Source = str | Path | bytes | IO[bytes]

NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)$"
TOO_MANY_DECIMALS = r"\.\d{11,}$"
TOO_LARGE = r"^[+-]?0*[1-9]\d{28,}"
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")
MAX_LISTED = 50
_ROW = "__line"


@dataclass(frozen=True)
class DataProblem:
    """One bad cell or column. `line` is the 1-based file line (None: whole column/file)."""

    file: str
    line: int | None
    column: str
    value: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line is not None else self.file
        shown = "" if self.value is None else f" (value {self.value!r})"
        return f"{where}, column '{self.column}': {self.message}{shown}"


class DataError(ValueError):
    """The input data cannot be evaluated; `problems` lists every problem found."""

    def __init__(self, problems: list[DataProblem]) -> None:
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems[:MAX_LISTED])
        more = len(problems) - MAX_LISTED
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"input data has {len(problems)} problem(s):\n{listed}{tail}")


def _name(source: Source, default: str) -> str:
    return str(source) if isinstance(source, str | Path) else default


def read_text_csv(source: Source, file: str) -> pl.DataFrame:
    """Every column as text (empty cells null) plus the file line of each row."""
    try:
        frame = pl.read_csv(source, infer_schema=False, raise_if_empty=True)
    except (pl.exceptions.NoDataError, pl.exceptions.ComputeError, OSError) as error:
        raise DataError([DataProblem(file, None, "", None, f"cannot read CSV: {error}")]) from None
    return frame.with_row_index(_ROW, offset=2)


class _Problems(list):
    """DataProblems found so far, plus cell checks not yet run. Checks are queued and then
    evaluated together, one pass over each file, instead of one filter per check."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[tuple[pl.DataFrame, pl.Expr, str, str, str]] = []

    def run_checks(self) -> None:
        by_frame: dict[int, list[tuple[pl.DataFrame, pl.Expr, str, str, str]]] = {}
        for check in self.pending:
            by_frame.setdefault(id(check[0]), []).append(check)
        self.pending = []
        for checks in by_frame.values():
            frame = checks[0][0]
            masks = frame.select(
                *(bad.fill_null(False).alias(f"c{i}") for i, (_, bad, *_) in enumerate(checks))
            )
            hits = masks.select(pl.all().any()).row(0)
            for index, (_, _, column, file, message) in enumerate(checks):
                if not hits[index]:
                    continue
                rows = frame.filter(masks.get_column(f"c{index}")).select(_ROW, column)
                for line, value in rows.iter_rows():
                    self.append(DataProblem(file, line, column, value, message))


def _report(
    problems: list[DataProblem],
    frame: pl.DataFrame,
    bad: pl.Expr,
    column: str,
    file: str,
    message: str,
) -> None:
    """Queue a cell check: rows where `bad` holds are problems with `message`."""
    assert isinstance(problems, _Problems)
    problems.pending.append((frame, bad, column, file, message))


def _typed(
    frame: pl.DataFrame, spec: InputSpec, kind: Type, file: str, problems: list[DataProblem]
) -> pl.Expr:
    """The expression turning text column `spec.key` into its type, after reporting every
    unparsable cell; empty cells become the default (or an error when required)."""
    key = spec.key
    raw = pl.col(key)
    text = raw.str.strip_chars()
    present = raw.is_not_null() & (text != "")
    if kind == Type.DECIMAL:
        _report(
            problems, frame, present & ~text.str.contains(NUMBER), key, file, "not a decimal number"
        )
        syntax_ok = present & text.str.contains(NUMBER)
        _report(
            problems,
            frame,
            syntax_ok & text.str.contains(TOO_MANY_DECIMALS),
            key,
            file,
            "more than 10 decimal places",
        )
        _report(
            problems,
            frame,
            syntax_ok & text.str.contains(TOO_LARGE),
            key,
            file,
            "out of range (|x| must be below 1e28)",
        )
        valid = syntax_ok & ~text.str.contains(TOO_MANY_DECIMALS) & ~text.str.contains(TOO_LARGE)
        typed = pl.when(valid).then(text).cast(DEC)
        if spec.dtype == "int":
            whole = typed.round(0) == typed
            _report(problems, frame, valid & ~whole, key, file, "not a whole number")
    elif kind == Type.BOOL:
        lowered = text.str.to_lowercase()
        known = lowered.is_in([*TRUE_WORDS, *FALSE_WORDS])
        _report(
            problems, frame, present & ~known, key, file, "not a boolean (true/false, 1/0, yes/no)"
        )
        typed = pl.when(present & known).then(lowered.is_in(TRUE_WORDS))
    elif kind == Type.DATE:
        parsed = text.str.to_date("%Y-%m-%d", strict=False)
        ok = text.str.contains(ISO_DATE) & parsed.is_not_null()
        _report(problems, frame, present & ~ok, key, file, "not an ISO date (YYYY-MM-DD)")
        typed = pl.when(present & ok).then(parsed)
    else:
        typed = pl.when(raw.is_not_null()).then(raw)
    if spec.default is not None:
        return typed.fill_null(_default(kind, spec.default)).alias(key)
    if spec.required:
        _report(problems, frame, ~present, key, file, "required value is empty")
    return typed.alias(key)


def _default(kind: Type, value: Any) -> pl.Expr:
    return pl.lit(value, dtype=POLARS_TYPES[kind])


def _check_columns(
    frame: pl.DataFrame, specs: list[InputSpec], file: str, problems: list[DataProblem]
) -> list[InputSpec]:
    """Report missing required columns; returns the specs whose column is present."""
    present = []
    for spec in specs:
        if spec.key in frame.columns:
            present.append(spec)
        elif spec.required and spec.default is None:
            problems.append(DataProblem(file, None, spec.key, None, "required column is missing"))
    return present


def _ref_column(
    frame: pl.DataFrame, column: str, file: str, problems: list[DataProblem], unique: bool
) -> None:
    """A reference column (employee_ref, fund_ref): present, never empty, unique if asked."""
    if column not in frame.columns:
        problems.append(DataProblem(file, None, column, None, "required column is missing"))
        return
    ref = pl.col(column)
    _report(
        problems,
        frame,
        ref.is_null() | (ref.str.strip_chars() == ""),
        column,
        file,
        "required value is empty",
    )
    ordered = ref.drop_nulls().sort()
    if unique and frame.select((ordered == ordered.shift(1)).any()).item():
        # Sorting finds that there are duplicates ten times faster than hashing; only
        # then are the duplicate rows themselves looked up.
        _report(
            problems,
            frame,
            ref.is_not_null() & ref.is_duplicated(),
            column,
            file,
            "duplicate value",
        )


def _typed_frame(
    frame: pl.DataFrame,
    specs: list[InputSpec],
    plan: CompiledPlan,
    file: str,
    problems: list[DataProblem],
) -> pl.DataFrame:
    present = _check_columns(frame, specs, file, problems)
    exprs = [_typed(frame, spec, plan.input_types[spec.key], file, problems) for spec in present]
    for spec in specs:
        if spec not in present:
            exprs.append(_default(plan.input_types[spec.key], spec.default).alias(spec.key))
    return frame.select(pl.col(_ROW), *exprs)


def load_inputs(
    plan: CompiledPlan, employees_csv: Source, funds_csv: Source | None = None
) -> pl.DataFrame:
    """The typed input frame: employee_ref, fund_ref, then every declared input in order.

    Fund-scope inputs come from `funds_csv` (keyed by fund_ref) when given, otherwise from
    the employees file itself. Raises DataError listing every problem.
    """
    employees_file = _name(employees_csv, "employees.csv")
    problems = _Problems()
    employees = read_text_csv(employees_csv, employees_file)
    specs = [spec for spec in plan.document.inputs if spec.key in plan.input_types]
    fund_specs = [s for s in specs if s.scope == "fund"] if funds_csv is not None else []
    employee_specs = [s for s in specs if s not in fund_specs]
    needs_fund_ref = bool(fund_specs) or plan.uses_fund_ref
    _ref_column(employees, "employee_ref", employees_file, problems, unique=True)
    if needs_fund_ref:
        _ref_column(employees, "fund_ref", employees_file, problems, unique=False)
    typed = _typed_frame(employees, employee_specs, plan, employees_file, problems)
    refs = [
        pl.col(c) if c in employees.columns else pl.lit(None, dtype=pl.String).alias(c)
        for c in ("employee_ref", "fund_ref")
    ]
    result = pl.concat([employees.select(refs), typed], how="horizontal")
    if funds_csv is not None:
        result = _join_funds(
            result, plan, funds_csv, fund_specs, employees, employees_file, problems
        )
    problems.run_checks()
    if problems:
        raise DataError(sorted(problems, key=_problem_order))
    order = ["employee_ref", "fund_ref", *(s.key for s in specs)]
    return result.select(order)


def _join_funds(
    result: pl.DataFrame,
    plan: CompiledPlan,
    funds_csv: Source,
    fund_specs: list[InputSpec],
    employees: pl.DataFrame,
    employees_file: str,
    problems: list[DataProblem],
) -> pl.DataFrame:
    """Fund-scope inputs joined on fund_ref; employees naming an unknown fund are errors."""
    funds_file = _name(funds_csv, "funds.csv")
    funds = read_text_csv(funds_csv, funds_file)
    _ref_column(funds, "fund_ref", funds_file, problems, unique=True)
    if "fund_ref" not in funds.columns or "fund_ref" not in employees.columns:
        return result
    typed = _typed_frame(funds, fund_specs, plan, funds_file, problems)
    typed = pl.concat([funds.select("fund_ref"), typed.drop(_ROW)], how="horizontal")
    known = funds.get_column("fund_ref").drop_nulls()
    unknown = pl.col("fund_ref").is_not_null() & ~pl.col("fund_ref").is_in(known.implode())
    _report(
        problems,
        employees,
        unknown,
        "fund_ref",
        employees_file,
        "unknown fund_ref (not in the funds file)",
    )
    typed = typed.unique("fund_ref", keep="first")
    return result.join(typed, on="fund_ref", how="left", maintain_order="left")


def _problem_order(problem: DataProblem) -> tuple[str, int, str]:
    return (problem.file, problem.line or 0, problem.column)


LINE_COLUMN = _ROW


def typed_column(frame: pl.DataFrame, spec: InputSpec) -> tuple[pl.Expr, list[DataProblem]]:
    """The typing expression for text column `spec.key` of `frame` and the problems of its
    cells, for callers that validate a file in batches (the server's uploads).

    `frame` must carry the file line of each row in `LINE_COLUMN`; problems carry that line
    and an empty file name. Same rules as `load_inputs`: empty cells take the default, or
    are reported when the input is required.
    """
    from engine.plan import DTYPE_TO_TYPE

    problems = _Problems()
    expr = _typed(frame, spec, DTYPE_TO_TYPE[spec.dtype], "", problems)
    problems.run_checks()
    return expr, list(problems)
