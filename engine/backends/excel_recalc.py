"""Recalculate the Excel backend's formulas with the `formulas` package, column by column.

`formulas` is an independent Python implementation of Excel's calculation, so agreement
between its results and the engine's is real evidence that the emitted formulas mean what
the engine computes. Loading a whole workbook into `formulas.ExcelModel` parses every cell's
formula again (seconds per row). Here each formula *column* is parsed once, for the first data
row, by `formulas.Parser`, and its parse graph (the `formulas` function of every operator and
Excel function, in evaluation order) is run over all rows:

- Every formula reads only cells of its own row (`D7`) and whole data ranges (`$X$2:$X$501`,
  the aggregates' SUMPRODUCTs). Columns are evaluated in dependency order, each over all rows
  before the next, so a range is always a finished column. `ROW()` is the row number.
- `exact=True` calls each `formulas` function once per row with that row's cells: what Excel
  does cell by cell. It is the reference, and it costs milliseconds per function call, so
  quadratic aggregates (a SUMPRODUCT per row over the whole column) take minutes for a few
  hundred rows.
- By default element-wise functions (arithmetic, comparisons, IF, ROUND, …) are called once
  with the whole column as an array: `formulas` applies them cell by cell, so the values are
  the same. Functions that reduce their arguments (MIN, MAX, AND, SUMPRODUCT, …) are still
  called per row. The one thing evaluated outside `formulas` is the inside of a per-row
  SUMPRODUCT over whole ranges (`($X$2:$X$501=1)*EXACT($Y$2:$Y$501,Y7)*…`): comparisons,
  EXACT and products of numbers or texts, and the sum, computed with numpy as one matrix over
  all rows. Anything else there (an error value, an empty cell, mixed types) falls back to
  `formulas` per row. tests/engine/test_excel_recalc.py checks that both modes agree.

ROUND is replaced by Excel's: the argument is first taken at 15 significant digits (as Excel
displays and rounds it, so ROUND(2.675, 2) is 2.68 although the double is 2.67499…), then
rounded half away from zero.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import cache
from graphlib import TopologicalSorter
from typing import Any

import numpy as np
import schedula

from engine.backends.excel import ROW, ExcelColumn, ExcelPlan

_WIDE = Context(prec=80)
EXCEL_EPOCH = date(1899, 12, 30)
_REFERENCE = re.compile(r"^\$?([A-Z]{1,3})\$?(\d+)(?::\$?([A-Z]{1,3})\$?(\d+))?$")
_SUFFIX = re.compile(r"<\d+>$")

ELEMENTWISE = frozenset({
    "+", "-", "*", "/", "^", "U-", "U+", "=", "<>", "<", ">", "<=", ">=", "&",
    "IF", "IFERROR", "ISERROR", "ROUND", "ABS", "TRUNC", "INT", "MOD", "EXACT", "NOT", "CHOOSE",
})
"""`formulas` functions that work cell by cell, so one call over a column array is exact."""


def excel_round(number: float, digits: float) -> float:
    """Excel's ROUND: 15 significant digits, then half away from zero to `digits`."""
    value = Decimal(format(float(number), ".15g"))
    quantum = Decimal(1).scaleb(-int(digits))
    return float(value.quantize(quantum, rounding=ROUND_HALF_UP, context=_WIDE))


@cache
def install_excel_round() -> None:
    """Make `formulas` round like Excel (its own ROUND rounds the binary value)."""
    import formulas.functions as functions

    functions.FUNCTIONS["ROUND"] = functions.wrap_ufunc(excel_round)
    functions.get_functions.cache_clear()


def is_error(value: Any) -> bool:
    """True for an Excel error value (#N/A, #DIV/0!, #VALUE!, …): the DSL's null."""
    from formulas.tokens.operand import XlError

    return isinstance(value, XlError)


def excel_value(value: Any) -> Any:
    """A cell as Excel holds it: `=NA()` is #N/A, a date its serial number, numbers floats,
    an empty cell empty."""
    if value is None:
        return schedula.EMPTY
    if isinstance(value, str) and value.upper() == "=NA()":
        from formulas.functions import Error

        return Error.errors["#N/A"]
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return float((value - EXCEL_EPOCH).days)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return float(value)
    return value


# --- one column's formula as a graph of `formulas` functions ---------------------------------


@dataclass(frozen=True)
class _Call:
    name: str
    function: Callable[..., Any]
    inputs: tuple[Any, ...]
    output: Any


@dataclass(frozen=True)
class _Formula:
    """A formula parsed by `formulas`: constants, references and calls in evaluation order."""

    letter: str
    constants: dict[Any, Any]
    references: dict[Any, tuple[str, bool]]
    """Graph node → (column letter, whole data range?)."""
    calls: tuple[_Call, ...]
    output: Any


def _parse(column: ExcelColumn, first_row: int, last_row: int) -> _Formula:
    import formulas

    text = "=" + column.template.replace(ROW, str(first_row))
    builder = formulas.Parser().ast(text)[1]
    builder.finish()
    graph = builder.dsp
    constants = {key: spec["value"] for key, spec in graph.default_values.items()}
    references, calls = {}, []
    for key, node in graph.nodes.items():
        if node["type"] == "function":
            name = _SUFFIX.sub("", str(key))
            calls.append(_Call(name, node["function"], tuple(node["inputs"]),
                               node["outputs"][0]))
        elif key not in constants and not graph.dmap.pred[key]:
            references[key] = _reference(str(key), column.key, first_row, last_row)
    return _Formula(column.letter, constants, references, tuple(calls),
                    builder.get_node_id(builder[-1]))


def _reference(name: str, key: str, first_row: int, last_row: int) -> tuple[str, bool]:
    match = _REFERENCE.match(name.upper())
    if match is None:
        raise ValueError(f"column '{key}': unexpected reference {name!r}")
    first, row, last, end = match.groups()
    if last is None:
        if int(row) != first_row:
            raise ValueError(f"column '{key}': {name} is not a cell of its own row")
        return first, False
    if first != last or int(row) != first_row or int(end) != last_row:
        raise ValueError(f"column '{key}': {name} is not a whole data column")
    return first, True


# --- values over all rows --------------------------------------------------------------------


@dataclass(frozen=True)
class _Value:
    """A graph value over all rows: the same for every row (`const`: a scalar, or a whole
    column as an (n, 1) array), one value per row (`rows`: a list), or one array per row
    (`matrix`: rows by cells, numpy)."""

    kind: str
    data: Any
    scalar: bool = True
    """For `rows`: every value is a scalar (not an array)."""

    def at(self, row: int) -> Any:
        if self.kind == "const":
            return self.data
        if self.kind == "rows":
            return self.data[row]
        return self.data[row].astype(object).reshape(-1, 1)


def _unwrap(result: Any) -> Any:
    """A `formulas` result as a Python scalar, or an (n, 1) object array."""
    if isinstance(result, np.ndarray):
        if result.size == 1:
            result = result.reshape(()).item() if result.dtype != object else result.ravel()[0]
        else:
            return np.asarray(result, dtype=object).reshape(-1, 1)
    if isinstance(result, np.generic):
        return result.item()
    return result


def _rows(values: list[Any]) -> _Value:
    return _Value("rows", values, all(not isinstance(v, np.ndarray) for v in values))


class RowModel:
    """Every formula column of an `ExcelPlan`, parsed once, evaluated over all data rows."""

    def __init__(self, layout: ExcelPlan, exact: bool = False) -> None:
        install_excel_round()
        self.layout = layout
        self.exact = exact
        self.count = layout.last_row - layout.first_row + 1
        parsed = {c.letter: _parse(c, layout.first_row, layout.last_row) for c in layout.columns}
        graph = {
            letter: {ref for ref, _ in formula.references.values()
                     if ref in parsed and ref != letter}
            for letter, formula in parsed.items()
        }
        self.order = [parsed[letter] for letter in TopologicalSorter(graph).static_order()]

    def calculate(self, inputs: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
        """Column letter → value per data row, for every formula column. `inputs` maps each
        input column letter to its cells (as openpyxl reads them), one per data row."""
        columns: dict[str, list[Any]] = {}
        for letter, cells in inputs.items():
            if len(cells) != self.count:
                raise ValueError(f"column {letter}: {len(cells)} cells for {self.count} rows")
            columns[letter] = [excel_value(v) for v in cells]
        ranges: dict[str, np.ndarray] = {}
        for formula in self.order:
            missing = [letter for letter, _ in formula.references.values()
                       if letter not in columns]
            if missing:
                raise ValueError(f"column {formula.letter} reads {missing[0]}, which is empty")
            for letter, whole in formula.references.values():
                if whole and letter not in ranges:
                    ranges[letter] = np.asarray(columns[letter], dtype=object).reshape(-1, 1)
            columns[formula.letter] = self._column(formula, columns, ranges)
        return {column.letter: columns[column.letter] for column in self.layout.columns}

    def _column(self, formula: _Formula, columns: Mapping[str, list[Any]],
                ranges: Mapping[str, np.ndarray]) -> list[Any]:
        """One formula column over all rows. A row's value depends only on the cells of its
        own row that the formula reads (whole ranges and constants are the same for every
        row; ROW() excepted), so rows reading the same cells share one evaluation: an
        aggregate's SUMPRODUCT over the whole column is computed once per group, not once per
        row, which keeps it linear in the rows (10,000 rows, 20 funds: 20 evaluations)."""
        every = list(range(self.count))
        if self.exact or any(call.name == "ROW" for call in formula.calls):
            return self._evaluate(formula, columns, ranges, every)
        hoisted = {call.output: self._column(part, columns, ranges)
                   for call, part in _hoistable(formula)}
        own = sorted({letter for letter, whole in formula.references.values() if not whole})
        unique, inverse = _distinct_rows([columns[letter] for letter in own], self.count)
        if len(unique) == self.count:
            given = {key: _Value("rows", values) for key, values in hoisted.items()}
            return self._evaluate(formula, columns, ranges, every, given)
        given = {key: _Value("rows", [values[row] for row in unique])
                 for key, values in hoisted.items()}
        values = self._evaluate(formula, columns, ranges, unique, given)
        return [values[index] for index in inverse]

    def _evaluate(self, formula: _Formula, columns: Mapping[str, list[Any]],
                  ranges: Mapping[str, np.ndarray], rows: list[int],
                  given: Mapping[Any, _Value] | None = None) -> list[Any]:
        """The formula's value at each of `rows` (row indexes into the data). `given`: graph
        values already computed over all rows; the calls only they need are skipped."""
        everything = self.count
        self.count = len(rows)
        needed = _needed(formula, given or {})
        try:
            values = {key: _Value("const", value) for key, value in formula.constants.items()}
            values.update(given or {})
            for key, (letter, whole) in formula.references.items():
                if whole:
                    values[key] = _Value("const", ranges[letter])
                elif len(rows) == everything:
                    values[key] = _Value("rows", columns[letter])
                else:
                    values[key] = _Value("rows", [columns[letter][row] for row in rows])
            for call in formula.calls:
                if call.output in needed:
                    values[call.output] = self._call(call, [values[key] for key in call.inputs])
            return self._per_row(values[formula.output], formula.letter)
        finally:
            self.count = everything

    def _per_row(self, value: _Value, letter: str) -> list[Any]:
        if value.kind == "const" and not isinstance(value.data, np.ndarray):
            return [value.data] * self.count
        if value.kind == "rows" and value.scalar:
            return list(value.data)
        raise ValueError(f"column {letter}: the formula gives an array, not one value per row")

    def _call(self, call: _Call, args: list[_Value]) -> _Value:
        if call.function is schedula.bypass and len(args) == 1:
            return args[0]  # a sub-expression used twice: the same value
        if call.name == "ROW" and all(a.kind == "const" for a in args):
            return _Value("rows", [float(self.layout.first_row + i) for i in range(self.count)])
        if all(a.kind == "const" for a in args):
            return _Value("const", _unwrap(call.function(*(a.data for a in args))))
        if not self.exact:
            fast = _vectorised(call, args, self.count)
            if fast is not None:
                return fast
        return _rows([_unwrap(call.function(*(a.at(row) for a in args)))
                      for row in range(self.count)])


def _own_cells(formula: _Formula) -> dict[Any, frozenset[str]]:
    """Graph node → the columns whose own-row cells its value depends on."""
    cells: dict[Any, frozenset[str]] = {
        key: frozenset() if whole else frozenset({letter})
        for key, (letter, whole) in formula.references.items()
    }
    for call in formula.calls:
        cells[call.output] = frozenset().union(*(cells.get(key, frozenset())
                                                 for key in call.inputs))
    return cells


def _ancestors(formula: _Formula, output: Any) -> _Formula:
    """The part of the formula that computes `output`, as a formula of its own."""
    wanted, calls = {output}, []
    for call in reversed(formula.calls):
        if call.output in wanted:
            calls.append(call)
            wanted.update(call.inputs)
    references = {key: ref for key, ref in formula.references.items() if key in wanted}
    return _Formula(formula.letter, formula.constants, references, tuple(reversed(calls)),
                    output)


def _hoistable(formula: _Formula) -> list[tuple[_Call, _Formula]]:
    """The formula's SUMPRODUCTs that read fewer own-row cells than the whole formula (a
    group total divided into each row's own value: `U7/SUMPRODUCT(member*$CL$2:$CL$501)`),
    each with the part of the formula that computes it. Evaluated on their own, they are
    computed once per group, not once per row over the whole column (quadratic)."""
    cells = _own_cells(formula)
    everything = frozenset().union(*cells.values())
    return [(call, _ancestors(formula, call.output)) for call in formula.calls
            if call.name == "SUMPRODUCT" and cells[call.output] < everything]


def _needed(formula: _Formula, given: Mapping[Any, _Value]) -> set[Any]:
    """The call outputs that the formula's result needs, when `given` are known."""
    wanted, needed = {formula.output}, set()
    for call in reversed(formula.calls):
        if call.output in wanted and call.output not in given:
            needed.add(call.output)
            wanted.update(call.inputs)
    return needed


def _distinct_rows(columns: list[list[Any]], count: int) -> tuple[list[int], list[int]]:
    """(the first row of each distinct combination of the columns' cells, each row's index in
    that list). Cells are told apart by type and repr, so 1 and TRUE, 0.0 and -0.0, or two
    different error values never share an evaluation."""
    first: dict[tuple[str, ...], int] = {}
    unique: list[int] = []
    inverse: list[int] = []
    for row in range(count):
        key = tuple(f"{type(cells[row]).__name__}:{cells[row]!r}" for cells in columns)
        index = first.get(key)
        if index is None:
            index = first[key] = len(unique)
            unique.append(row)
        inverse.append(index)
    return unique, inverse


# --- the fast paths --------------------------------------------------------------------------


def _vectorised(call: _Call, args: list[_Value], count: int) -> _Value | None:
    """One call over whole columns, or numpy over rows by cells; None when neither applies."""
    columns = any(a.kind == "const" and isinstance(a.data, np.ndarray) for a in args)
    if call.name in ELEMENTWISE and not columns and all(
        a.kind == "const" or (a.kind == "rows" and a.scalar) for a in args
    ):
        native = _elementwise_native(call.name, args, count)
        if native is not None:
            return native
        arrays = [np.asarray(a.data, dtype=object).reshape(-1, 1) if a.kind == "rows"
                  else a.data for a in args]
        result = np.asarray(call.function(*arrays), dtype=object)
        if result.size == 1:
            return _Value("const", _unwrap(result))
        return _rows([_unwrap(v) for v in result.reshape(count)])
    if call.name == "SUMPRODUCT" and len(args) == 1 and args[0].kind == "matrix":
        matrix = args[0].data
        if matrix.dtype.kind == "u":  # a product of conditions: the count of the 1s
            return _rows([float(np.count_nonzero(matrix[row])) for row in range(count)])
        if matrix.dtype.kind == "f":
            return _rows([float(np.sum(np.ascontiguousarray(matrix[row], dtype=float)))
                          for row in range(count)])
        return None
    if call.name in _MATRIX_OPS and len(args) == 2 and (
        columns or any(a.kind == "matrix" for a in args)
    ):
        return _matrix_op(call.name, args)
    return None


def _elementwise_native(name: str, args: list[_Value], count: int) -> _Value | None:
    """Arithmetic, comparisons, NOT and IF over whole columns with numpy when every cell is
    a finite number (or, for `=`/`<>`, a text; a boolean for NOT and IF's condition): the
    same IEEE doubles and booleans that `formulas`
    gives calling its Python function once per cell (which made the audit workbook of a
    10,000-employee run cost about a minute of CPU). Anything else (errors, empty cells,
    mixed types, a zero divisor, a result that is not finite) returns None, and `formulas`
    decides, cell by cell."""
    natives = [_native(a) for a in args]
    if any(n is None for n in natives):
        return None
    kinds = "".join(n.dtype.kind for n in natives)  # type: ignore[union-attr]
    if name == "U-" and kinds == "f":
        result = np.negative(natives[0])
    elif name == "NOT" and kinds == "b":
        result = np.logical_not(natives[0])
    elif name == "IF" and kinds == "bff" and all(_floats(a) for a in args[1:]):
        result = np.where(*natives)  # IF passes a branch through: only when both are floats
    elif name in _ELEMENTWISE_OPS and len(args) == 2:
        result = _ELEMENTWISE_OPS[name](*natives)
    else:
        return None
    if result is None or np.ndim(result) != 2:
        return None
    if result.dtype.kind == "f" and not np.isfinite(result).all():
        return None
    return _rows(np.broadcast_to(result, (count, 1)).reshape(count).tolist())


def _floats(value: _Value) -> bool:
    cells = value.data if value.kind == "rows" else [value.data]
    return all(type(cell) is float for cell in cells)


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Excel `/` on numbers; a zero divisor (#DIV/0!) is left to `formulas`."""
    if a.dtype.kind == "f" and b.dtype.kind == "f" and np.all(b != 0):
        return np.divide(a, b)
    return None


def _native(value: _Value) -> np.ndarray | None:
    """The value as a numpy array shaped for rows by cells broadcasting, when it holds only
    numbers, only booleans or only texts; None otherwise (errors, empties, mixed types)."""
    if value.kind == "matrix":
        return value.data
    if value.kind == "const" and not isinstance(value.data, np.ndarray):
        cells, shape = [value.data], ()
    elif value.kind == "const":
        cells, shape = list(value.data.ravel()), (1, -1)
    elif value.scalar:
        cells, shape = list(value.data), (-1, 1)
    else:
        return None
    kinds = {_kind(cell) for cell in cells}
    if kinds == {"f"}:
        return np.asarray(cells, dtype=float).reshape(shape)
    if kinds == {"b"}:
        return np.asarray(cells, dtype=bool).reshape(shape)
    if kinds == {"s"}:
        return np.asarray(cells, dtype=object).reshape(shape)
    return None


def _kind(cell: Any) -> str:
    if isinstance(cell, bool | np.bool_):
        return "b"
    if isinstance(cell, int | float | np.integer | np.floating):
        return "f" if np.isfinite(cell) else "?"
    if isinstance(cell, str):
        return "s"
    return "?"


def _upper(array: np.ndarray) -> np.ndarray:
    return np.vectorize(str.upper, otypes=[object])(array)


def _codes(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two text arrays as integer codes of one vocabulary: equal codes exactly where the
    texts are equal, so a rows-by-cells comparison compares integers, not Python strings."""
    vocabulary: dict[Any, int] = {}

    def encode(array: np.ndarray) -> np.ndarray:
        codes = [vocabulary.setdefault(cell, len(vocabulary)) for cell in array.ravel()]
        return np.asarray(codes, dtype=np.int64).reshape(array.shape)

    return encode(a), encode(b)


def _compare(op: Callable[[Any, Any], Any]) -> Callable[[np.ndarray, np.ndarray], Any]:
    """Excel `=`/`<>` etc.: numbers with numbers; texts with texts, ignoring case."""

    def apply(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
        if a.dtype.kind == "f" and b.dtype.kind == "f":
            return op(a, b)
        if a.dtype == object and b.dtype == object and op in (np.equal, np.not_equal):
            return op(*_codes(_upper(a), _upper(b)))
        return None

    return apply


def _arithmetic(op: Callable[[Any, Any], Any]) -> Callable[[np.ndarray, np.ndarray], Any]:
    """Excel `*`, `+`, `-` on numbers and booleans (TRUE is 1)."""

    def apply(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
        if op is np.multiply and a.dtype.kind in "bu" and b.dtype.kind in "bu":
            # 0/1 times 0/1: the number 0 or 1 (uint8, one byte a cell; a bool would be a
            # logical value, which SUMPRODUCT ignores)
            return np.logical_and(a, b).astype(np.uint8)
        if a.dtype.kind in "fbu" and b.dtype.kind in "fbu":
            return op(a.astype(float), b.astype(float))
        return None

    return apply


def _exact(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    if a.dtype == object and b.dtype == object:
        return np.equal(*_codes(a, b))
    return None


_MATRIX_OPS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray | None]] = {
    "=": _compare(np.equal), "<>": _compare(np.not_equal), "<": _compare(np.less),
    ">": _compare(np.greater), "<=": _compare(np.less_equal),
    ">=": _compare(np.greater_equal), "*": _arithmetic(np.multiply),
    "+": _arithmetic(np.add), "-": _arithmetic(np.subtract), "EXACT": _exact,
}


_ELEMENTWISE_OPS = {name: op for name, op in _MATRIX_OPS.items() if name != "EXACT"} | {
    "/": _divide}


def _matrix_op(name: str, args: list[_Value]) -> _Value | None:
    left, right = (_native(a) for a in args)
    if left is None or right is None:
        return None
    result = _MATRIX_OPS[name](left, right)
    if result is None or np.ndim(result) != 2:
        return None
    rows = max(np.shape(left)[0] if np.ndim(left) == 2 else 1,
               np.shape(right)[0] if np.ndim(right) == 2 else 1)
    return _Value("matrix", np.broadcast_to(result, (rows, result.shape[1])))
