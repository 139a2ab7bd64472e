"""The Excel formula backend (ENGINE.md §10): the typed AST compiled to worksheet formulas.

One row per employee, one column per step (display order), then helper columns. Excel works
in binary64 and its ROUND is half away from zero, so the formulas imitate rule R10 as far as
doubles allow and agreement with the engine is checked to the cent:

- `round2`/`round` use a half-even formula (`_half_even`): the value is scaled, snapped to the
  decimals it can have (never past its 15th significant digit, `snap`), tested for an exact .5
  tie and, on a tie, rounded to the even neighbour. `*`, `/`, `pct`, `pct_change` and
  `prorate` results go through the same formula at 10 dp; `+`, `-` and `%` are snapped with
  ROUND(…, 10) (exact in decimal, so the snap only removes binary noise and keeps `=`
  comparisons honest).
- `%` is MOD (Excel's MOD is floored, like R10 rule 4); `^ n` is repeated multiplication, each
  product rounded; `==`/`!=` on text use EXACT (Excel's `=` ignores case).
- **Nulls are Excel error values.** A null input cell holds `=NA()`; division by zero gives
  `#DIV/0!`; every operator and function propagates errors, which is exactly the DSL's strict
  null rule, and IF(error, …) is an error like `if(null)`. `&&`/`||` are three-valued via
  CHOOSE over {FALSE, null, TRUE} encoded as 0, 0.5, 1 (MIN for `&&`, MAX for `||`).
- Aggregates (`sum_over`, `count_over`, `allocate`) get helper columns: a 0/1 "included" column
  built from the call's *taken* conditions (guards, `if` branches, `&&`/`||` short circuits;
  docs/engine.md §3), the key and the argument values with errors replaced, and SUMPRODUCT over
  the data range (EXACT for text keys, so no wildcard or case surprises of SUMIFS).
  `allocate` adds raw share, floor, remainder, the leftover cent count and a rank; ties in the
  remainder go to the earlier row, so rows must be sorted by `employee_ref` (ordinal), which
  `build_workbook` does.

Sub-expressions that a formula needs more than once are inlined when short and moved into a
helper column otherwise, so formula size stays linear in the expression.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from openpyxl.utils import get_column_letter

from engine.dsl.ast import (
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
)
from engine.plan import CompiledPlan

ROW = "\x00"
"""Placeholder for the current row number inside a formula template."""

MAX_FORMULA_LENGTH = 8192
"""Excel refuses a formula longer than this many characters."""

SHAREABLE_LENGTH = 60
"""A sub-formula up to this many characters may be repeated inline; longer ones get a helper."""


class ExcelCompileError(ValueError):
    """The plan cannot be laid out as formulas (e.g. a name without a column)."""


@dataclass(frozen=True)
class ExcelColumn:
    """One formula column. `key` is the step name, or `<step>.<n>.<purpose>` for helpers."""

    key: str
    letter: str
    is_step: bool
    template: str

    def formula(self, row: int) -> str:
        return "=" + self.template.replace(ROW, str(row))


@dataclass(frozen=True)
class ExcelPlan:
    """The compiled layout: step columns in display order, then helper columns."""

    columns: tuple[ExcelColumn, ...]
    step_columns: dict[str, str]
    first_row: int
    last_row: int

    def formulas(self, row: int) -> dict[str, str]:
        """Column letter → formula text for one data row."""
        return {column.letter: column.formula(row) for column in self.columns}


@dataclass(frozen=True)
class _Emitted:
    """Formula text of a sub-expression; `atomic` when it is a cell reference or literal."""

    text: str
    atomic: bool = False

    @property
    def shareable(self) -> bool:
        return self.atomic or len(self.text) <= SHAREABLE_LENGTH


# The formulas' spelling, stored in every audit workbook so that verify-workbook compares a
# workbook with what the generator that wrote it emitted: 1 snapped with ROUND(x, d) (up to
# commit 5224384), 2 never past the 15th significant digit (`snap`). Raise it whenever a
# formula's text changes, and keep the old spelling emitted for the old number.
FORMULA_VERSION = 2
FORMULA_VERSIONS = (1, 2)


@dataclass
class _Compiler:
    plan: CompiledPlan
    refs: dict[str, str]
    literals: dict[str, str]
    first_row: int
    last_row: int
    next_column: int
    helpers: list[ExcelColumn] = field(default_factory=list)
    step: str = ""
    counter: int = 0
    version: int = FORMULA_VERSION

    def snap(self, value: str, decimals: int) -> str:
        """`snap` in this formula version's spelling (version 1: a plain ROUND)."""
        return snap(value, decimals) if self.version >= 2 else f"ROUND({value},{decimals})"

    # -- columns ---------------------------------------------------------------------------

    def helper(self, purpose: str, text: str) -> str:
        """Put `text` in a new helper column; returns the column letter."""
        self.counter += 1
        letter = get_column_letter(self.next_column)
        self.next_column += 1
        key = f"{self.step}.{self.counter}.{purpose}"
        self.helpers.append(ExcelColumn(key, letter, False, text))
        return letter

    def cell(self, letter: str) -> _Emitted:
        return _Emitted(f"{letter}{ROW}", atomic=True)

    def span(self, letter: str) -> str:
        return f"${letter}${self.first_row}:${letter}${self.last_row}"

    def shared(self, emitted: _Emitted, purpose: str = "value") -> _Emitted:
        """`emitted` itself if it may be repeated, else a reference to a new helper column."""
        return emitted if emitted.shareable else self.cell(self.helper(purpose, emitted.text))

    # -- rounding --------------------------------------------------------------------------

    def half_even(self, value: _Emitted, places: int) -> _Emitted:
        """Round half to even to `places` decimals, as a formula (see module docstring)."""
        x = self.shared(value).text
        factor = 10**places
        scaled = self.snap(f"{x}*{factor}" if places else x, max(10 - places, 4))
        if len(scaled) > SHAREABLE_LENGTH:
            scaled = self.cell(self.helper("scaled", scaled)).text
        return _Emitted(
            f"(IF(ABS({scaled}-TRUNC({scaled}))=0.5,2*ROUND({scaled}/2,0),"
            f"ROUND({scaled},0))/{factor})"
        )

    # -- expressions -----------------------------------------------------------------------

    def emit(self, node: Node, taken: tuple[str, ...]) -> _Emitted:
        match node:
            case Number(value=value):
                return _Emitted(_number(value), atomic=True)
            case String(value=value):
                return _Emitted(_string(value), atomic=True)
            case Boolean(value=value):
                return _Emitted("TRUE" if value else "FALSE", atomic=True)
            case DateLiteral(value=value):
                return _Emitted(_date(value), atomic=True)
            case Name(ident=ident):
                return self.name(ident)
            case Unary(op="+", operand=operand):
                return self.emit(operand, taken)
            case Unary(op="-", operand=operand):
                return _Emitted(f"(0-{self.emit(operand, taken).text})")
            case Binary(op="&&" | "||"):
                return self.logical(node, taken)
            case Binary():
                return self.binary(node, taken)
            case If(cond=cond, then=then, else_=else_):
                condition = self.emit(cond, taken)
                shared = self.shared(condition, "if")
                yes = self.emit(then, (*taken, _is_true(shared.text)))
                no = self.emit(else_, (*taken, _is_false(shared.text)))
                return _Emitted(f"IF({shared.text},{yes.text},{no.text})")
            case Call():
                return self.call(node, taken)
        raise TypeError(f"cannot compile {node!r}")

    def name(self, ident: str) -> _Emitted:
        if ident in self.refs:
            return _Emitted(self.refs[ident], atomic=True)
        if ident in self.literals:
            return _Emitted(self.literals[ident], atomic=True)
        raise ExcelCompileError(f"step '{self.step}': no column for '{ident}'")

    def logical(self, node: Binary, taken: tuple[str, ...]) -> _Emitted:
        left = self.shared(self.emit(node.left, taken), "logic")
        guard = _not_false(left.text) if node.op == "&&" else _not_true(left.text)
        right = self.emit(node.right, (*taken, guard))
        combine = "MIN" if node.op == "&&" else "MAX"
        code = f"{combine}({_tri(left.text)},{_tri(right.text)})"
        return _Emitted(f"CHOOSE({code}*2+1,FALSE,NA(),TRUE)")

    def binary(self, node: Binary, taken: tuple[str, ...]) -> _Emitted:
        op = node.op
        if op == "^":
            return self.power(self.emit(node.left, taken), int(node.right.value))  # type: ignore[attr-defined]
        left, right = self.emit(node.left, taken), self.emit(node.right, taken)
        a, b = left.text, right.text
        if op in ("==", "!="):
            if node.left.type == Type.TEXT:
                same = f"EXACT({a},{b})"
                return _Emitted(same if op == "==" else f"NOT({same})")
            return _Emitted(f"({a}{'=' if op == '==' else '<>'}{b})")
        if op in ("<", "<=", ">", ">="):
            return _Emitted(f"({a}{op}{b})")
        if op in ("+", "-"):
            return _Emitted(f"ROUND({a}{op}{b},10)")
        if op == "%":
            return _Emitted(f"ROUND(MOD({a},{b}),10)")
        return self.half_even(_Emitted(f"({a}{op}{b})"), 10)

    def power(self, base: _Emitted, exponent: int) -> _Emitted:
        """x ^ n: n-1 rounded products left to right; x ^ 0 is 1 (null stays null)."""
        base = self.shared(base, "base")
        if exponent == 0:
            return _Emitted(f"IF(ISERROR({base.text}),NA(),1)")
        result = base
        for _ in range(exponent - 1):
            result = self.half_even(_Emitted(f"({self.shared(result).text}*{base.text})"), 10)
        return result

    # -- catalog functions -----------------------------------------------------------------

    def call(self, node: Call, taken: tuple[str, ...]) -> _Emitted:
        func = node.func
        if func in AGGREGATES:
            return AGGREGATES[func](self, node, taken)
        args = [self.emit(arg, taken) for arg in node.args]
        texts = [arg.text for arg in args]
        match func:
            case "min" | "max":
                return _Emitted(f"{func.upper()}({','.join(texts)})")
            case "abs" | "not":
                return _Emitted(f"{func.upper()}({texts[0]})")
            case "round2":
                return self.half_even(args[0], 2)
            case "round":
                return self.half_even(args[0], int(node.args[1].value))  # type: ignore[attr-defined]
            case "clip":
                return _Emitted(f"MIN(MAX({texts[0]},{texts[1]}),{texts[2]})")
            case "cap_floor":
                return _Emitted(f"MIN(MAX({texts[0]},{texts[2]}),{texts[1]})")
            case "hurdle":
                perf = self.shared(args[0], "perf").text
                return _Emitted(f"IF({perf}<{texts[1]},0,{perf})")
            case "pct":
                return self.half_even(_Emitted(f"({texts[0]}/100)"), 10)
            case "pct_change":
                prev = self.shared(args[1], "prev").text
                return self.half_even(_Emitted(f"(ROUND({texts[0]}-{prev},10)/{prev})"), 10)
            case "days_between":
                return _Emitted(f"({texts[1]}-{texts[0]})")
            case "prorate":
                return self.prorate(args)
        raise ExcelCompileError(f"step '{self.step}': no Excel formula for {func}()")

    def prorate(self, args: list[_Emitted]) -> _Emitted:
        start, end = args[0].text, args[1].text
        ps, pe = (self.shared(arg, "period").text for arg in args[2:])
        total = f"({pe}-{ps}+1)"
        covered = f"MAX(0,MIN(IFERROR({end},{pe}),{pe})-MAX(IFERROR({start},{ps}),{ps})+1)"
        share = self.half_even(_Emitted(f"({covered}/{total})"), 10)
        return _Emitted(f"IF({total}<=0,NA(),{share.text})")

    # -- aggregates ------------------------------------------------------------------------

    def included(self, taken: tuple[str, ...], extra: list[str]) -> str:
        """A helper column holding 1 where the aggregate call is taken (and extra holds)."""
        conditions = [*taken, *extra]
        text = f"IF(AND({','.join(conditions)}),1,0)" if conditions else "1"
        return self.helper("included", text)

    def group(self, node: Call, key_index: int, taken: tuple[str, ...], extra: list[str]):
        """(included column, membership array formula) of the call's group for this row."""
        key_node = node.args[key_index] if len(node.args) > key_index else None
        if key_node is None:
            included = self.included(taken, extra)
            return included, f"({self.span(included)}=1)"
        key = self.shared(self.emit(key_node, taken), "key").text
        included = self.included(taken, [f"NOT(ISERROR({key}))", *extra])
        key_column = self.helper("key", f'IFERROR({key},"")')
        if key_node.type == Type.TEXT:
            same = f"EXACT({self.span(key_column)},{key_column}{ROW})"
        else:
            same = f"({self.span(key_column)}={key_column}{ROW})"
        return included, f"({self.span(included)}=1)*{same}"

    def sum_over(self, node: Call, taken: tuple[str, ...]) -> _Emitted:
        values = self.helper("x", f"IFERROR({self.emit(node.args[0], taken).text},0)")
        included, member = self.group(node, 1, taken, [])
        total = f"ROUND(SUMPRODUCT({member}*{self.span(values)}),10)"
        return _Emitted(f"IF({included}{ROW}=1,{total},NA())")

    def count_over(self, node: Call, taken: tuple[str, ...]) -> _Emitted:
        included, member = self.group(node, 0, taken, [])
        return _Emitted(f"IF({included}{ROW}=1,SUMPRODUCT({member}*1),NA())")

    def allocate(self, node: Call, taken: tuple[str, ...]) -> _Emitted:
        """Largest-remainder allocation (docs/engine.md §4, §14) over helper columns."""
        pool = self.shared(self.emit(node.args[0], taken), "pool").text
        weight = self.shared(self.emit(node.args[1], taken), "weight").text
        checks = [f"NOT(ISERROR({pool}))", f"IFERROR({weight}>=0,FALSE)"]
        included, member = self.group(node, 2, taken, checks)
        me = f"{included}{ROW}=1"
        p = self.helper("pool", f"IF({me},{pool},0)")
        w = self.helper("weight", f"IF({me},{weight},0)")
        mixed = self.helper("pool_differs", f"SUMPRODUCT({member}*({self.span(p)}<>{p}{ROW}))")
        wsum = self.helper("weight_sum", f"ROUND(SUMPRODUCT({member}*{self.span(w)}),10)")
        product = self.half_even(_Emitted(f"({p}{ROW}*{w}{ROW})"), 10)
        share = self.cell(self.helper("share", f"IF({wsum}{ROW}=0,0,{product.text}/{wsum}{ROW})"))
        raw = self.helper("raw", self.half_even(share, 10).text)
        floor = self.helper("floor", f"INT({self.snap(f'{raw}{ROW}*100', 8)})/100")
        rest = self.helper("remainder", f"ROUND({raw}{ROW}-{floor}{ROW},10)")
        order = self.helper("row", "ROW()")
        pool_cents = f"INT({self.snap(f'{p}{ROW}*100', 8)})"
        floors = f"SUMPRODUCT({member}*{self.span(floor)})"
        count = f"SUMPRODUCT({member}*1)"
        cents = self.helper(
            "cents", f"MAX(0,MIN({count},ROUND({pool_cents}-{floors}*100,0)))"
        )
        ahead = (
            f"SUMPRODUCT({member}*({self.span(rest)}>{rest}{ROW}))"
            f"+SUMPRODUCT({member}*({self.span(rest)}={rest}{ROW})"
            f"*({self.span(order)}<{order}{ROW}))"
        )
        rank = self.helper("rank", f"1+{ahead}")
        bonus = f"IF({rank}{ROW}<={cents}{ROW},0.01,0)"
        return _Emitted(
            f"IF({me},IF({mixed}{ROW}>0,NA(),IF({wsum}{ROW}=0,NA(),"
            f"ROUND({floor}{ROW}+{bonus},2))),NA())"
        )


AGGREGATES = {
    "sum_over": _Compiler.sum_over,
    "count_over": _Compiler.count_over,
    "allocate": _Compiler.allocate,
}


def snap(value: str, decimals: int) -> str:
    """`value` rounded to `decimals` places, but never past its 15th significant digit.

    A double holds 15 significant digits exactly; beyond them the digits are binary noise
    (5000000000.005 * 100 is 500000000000.50001 as a double). Rounding at the 15th digit turns
    the double back into the decimal the engine holds, inside the stated range
    (docs/excel.md), whatever the application's own ROUND does with the noise (Excel
    pre-rounds to 15 digits, LibreOffice does not). `value` is repeated, so it must be short.
    """
    return f"ROUND({value},MIN({decimals},14-INT(LOG10(ABS({value})+1))))"


def _number(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _string(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _date(value: date) -> str:
    return f"DATE({value.year},{value.month},{value.day})"


def _tri(text: str) -> str:
    """A DSL bool as 0 (false), 0.5 (null) or 1 (true)."""
    return f"IFERROR({text}*1,0.5)"


def _is_true(text: str) -> str:
    return f"IFERROR({text}=TRUE,FALSE)"


def _is_false(text: str) -> str:
    return f"IFERROR({text}=FALSE,FALSE)"


def _not_false(text: str) -> str:
    return f"IFERROR({text}<>FALSE,TRUE)"


def _not_true(text: str) -> str:
    return f"IFERROR({text}<>TRUE,TRUE)"


def literal_formula(value: Any) -> str:
    """A typed plan value (parameter, default) as a formula literal; None is NA()."""
    if value is None:
        return "NA()"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, date):
        return _date(value)
    return _string(str(value))


def compile_plan(
    plan: CompiledPlan,
    input_columns: Mapping[str, str],
    first_row: int,
    last_row: int,
    first_free_column: int,
    parameter_cells: Mapping[str, str] | None = None,
    first_helper_column: int | None = None,
    formula_version: int = FORMULA_VERSION,
) -> ExcelPlan:
    """Formulas for every step of `plan` over data rows first_row..last_row.

    `input_columns` maps every input read (including `employee_ref`/`fund_ref`) to its column
    letter; `parameter_cells` maps parameters to absolute references (others are inlined as
    literals). Step columns start at column number `first_free_column` in display order;
    helper columns follow them, or start at `first_helper_column` when given. Rows must be
    sorted by employee_ref for `allocate` ties. `formula_version` picks the spelling of an
    older generator (`FORMULA_VERSIONS`), for verifying the workbooks it wrote.
    """
    if formula_version not in FORMULA_VERSIONS:
        raise ValueError(f"formula version {formula_version!r} is not one this Paysheet knows "
                         f"({', '.join(map(str, FORMULA_VERSIONS))}): a newer Paysheet wrote "
                         "the workbook, verify it with that one")
    step_letters = {
        name: get_column_letter(first_free_column + index)
        for index, name in enumerate(plan.display_order)
    }
    refs = {name: f"{letter}{ROW}" for name, letter in input_columns.items()}
    refs.update({name: f"{letter}{ROW}" for name, letter in step_letters.items()})
    refs.update(parameter_cells or {})
    literals = {name: literal_formula(value) for name, (_, value) in plan.parameters.items()}
    compiler = _Compiler(
        plan, refs, literals, first_row, last_row,
        first_helper_column or first_free_column + len(step_letters), version=formula_version,
    )
    templates: dict[str, str] = {}
    for step in plan.steps:
        compiler.step, compiler.counter = step.name, 0
        templates[step.name] = _step_formula(compiler, step)
    columns = [
        ExcelColumn(name, step_letters[name], True, templates[name]) for name in plan.display_order
    ]
    for column in (*columns, *compiler.helpers):
        if len(column.formula(last_row)) > MAX_FORMULA_LENGTH:
            raise ExcelCompileError(
                f"column '{column.key}': formula longer than Excel's {MAX_FORMULA_LENGTH} "
                "characters; split the step into smaller steps"
            )
    return ExcelPlan(tuple(columns + compiler.helpers), step_letters, first_row, last_row)


def _step_formula(compiler: _Compiler, step) -> str:
    if step.condition is None:
        return compiler.emit(step.expr, ()).text
    guard = compiler.shared(compiler.emit(step.condition, ()), "guard")
    value = compiler.emit(step.expr, (_is_true(guard.text),))
    default = "NA()" if step.default is None else compiler.emit(step.default, ()).text
    return f"IF({guard.text},{value.text},{default})"


# --- a workbook of inputs and formulas -------------------------------------------------------

SHEET = "Calc"
HEADER_ROW = 1


@dataclass(frozen=True)
class CalcWorkbook:
    """A built workbook and where things are in it (sheet `Calc`, one row per employee)."""

    workbook: Any
    layout: ExcelPlan
    employee_refs: tuple[str, ...]
    input_columns: dict[str, str]

    def row_of(self, index: int) -> int:
        return self.layout.first_row + index


def input_layout(plan: CompiledPlan, frame: Any) -> dict[str, str]:
    """Column letters of employee_ref, fund_ref (when present) and every input in `frame`."""
    names = ["employee_ref"]
    if "fund_ref" in frame.columns:
        names.append("fund_ref")
    names += [
        n for n in plan.input_types
        if n not in plan.parameters and n not in names and n in frame.columns
    ]
    return {name: get_column_letter(index + 1) for index, name in enumerate(names)}


def write_inputs(sheet: Any, frame: Any, input_columns: Mapping[str, str]) -> None:
    for name, letter in input_columns.items():
        sheet[f"{letter}{HEADER_ROW}"] = name
        for offset, value in enumerate(frame[name].to_list()):
            _write_value(sheet[f"{letter}{HEADER_ROW + 1 + offset}"], value)


def write_formulas(sheet: Any, layout: ExcelPlan, rows: int) -> None:
    for column in layout.columns:
        sheet[f"{column.letter}{HEADER_ROW}"] = column.key
        for row in range(layout.first_row, layout.first_row + rows):
            sheet[f"{column.letter}{row}"] = column.formula(row)


def build_workbook(plan: CompiledPlan, frame: Any) -> CalcWorkbook:
    """An openpyxl workbook with the typed inputs of `frame` (a Polars frame as
    engine.data produces) and every step as a formula. Rows are sorted by employee_ref
    (ordinal), as `allocate` ties require; a null input cell holds `=NA()`."""
    from openpyxl import Workbook

    frame = frame.sort("employee_ref")
    input_columns = input_layout(plan, frame)
    first_row = HEADER_ROW + 1
    last_row = max(first_row, HEADER_ROW + frame.height)
    layout = compile_plan(plan, input_columns, first_row, last_row, len(input_columns) + 1)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = SHEET
    write_inputs(sheet, frame, input_columns)
    write_formulas(sheet, layout, frame.height)
    refs = tuple(str(ref) for ref in frame["employee_ref"].to_list())
    return CalcWorkbook(workbook, layout, refs, input_columns)


def _write_value(cell: Any, value: Any) -> None:
    if value is None:
        cell.value = "=NA()"
    elif isinstance(value, Decimal):
        cell.value = float(value)
    else:
        cell.value = value
        if isinstance(value, date):
            cell.number_format = "yyyy-mm-dd"
