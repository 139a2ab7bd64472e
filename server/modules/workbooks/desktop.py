"""`paysheet excel push|pull`: the add-in's sync from the desktop, through xlwings.

push reads the plan from the workbook (the server importer's reading code, over the SheetBook
protocol), creates the draft on the first push (writing its id into `Plan`), sends the document
with `PUT /api/v1/bonus-plans/{id}/document` and writes every row's Status and Message back,
highlighting the offending cells. pull writes the stored plan's status, version, hash and
current diagnostics into the workbook without sending anything (after a lock, say).

Everything but `XlwingsBook` runs over any SheetBook and is tested with openpyxl
(tests/workbooks/test_desktop.py); xlwings needs a running Excel on Windows or macOS, which
the development machines do not have.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from server.modules.workbooks.locate import locate_all
from server.modules.workbooks.reader import WorkbookRead, locate_field, read_book
from server.modules.workbooks.sheets import SheetBook, write_plan_meta, write_statuses


class DesktopError(RuntimeError):
    """A push/pull that cannot go ahead (no Excel, no plan id, the server said no)."""


class ApiError(DesktopError):
    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        super().__init__(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        self.status = status
        self.errors = list(problem.get("errors") or [])


class PaysheetApi:
    """The few plan routes the desktop sync uses, over an httpx client whose base URL is the
    server (a FastAPI TestClient in the tests)."""

    def __init__(self, http: httpx.Client, token: str | None = None) -> None:
        self.http = http
        self.token = token
        self.tenant_id: str | None = None

    def request(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        response = self.http.request(method, f"/api/v1{path}", headers=headers,
                                     json=body)
        data = response.json() if response.content else None
        if response.is_error:
            raise ApiError(response.status_code, data if isinstance(data, dict) else {})
        return data

    def sign_in(self, email: str, password: str) -> None:
        issued = self.request("POST", "/auth/token", {"email": email, "password": password})
        self.token, self.tenant_id = issued["access_token"], issued["tenant_id"]

    def tenant(self) -> str:
        if self.tenant_id is None:
            self.tenant_id = self.request("GET", "/me")["tenant_id"]
        return self.tenant_id

    def create_plan(self, name: str) -> dict[str, Any]:
        return self.request("POST", f"/tenants/{self.tenant()}/bonus-plans", {"name": name})

    def put_document(self, plan_id: str, document: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("PUT", f"/bonus-plans/{plan_id}/document", document)

    def plan(self, plan_id: str) -> dict[str, Any]:
        return self.request("GET", f"/bonus-plans/{plan_id}")

    def validate(self, plan_id: str) -> dict[str, Any]:
        return self.request("POST", f"/bonus-plans/{plan_id}/validate")


@dataclass
class SyncResult:
    plan_id: str | None
    valid: bool
    status: str | None = None
    plan_hash: str | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)


def push(book: SheetBook, api: PaysheetApi) -> SyncResult:
    """Send the workbook's plan (creating the draft on the first push) and write the answer
    back; cell errors found while reading are written back without a request."""
    read = read_book(book)
    if not read.ok:
        return _write_cell_errors(book, read, [error.as_dict() for error in read.errors])
    plan_id = read.plan_id
    if plan_id is None:
        created = api.create_plan(read.document.get("name") or "Untitled plan")
        plan_id = read.plan_id = str(created["id"])
        write_plan_meta(book, {"plan_id": plan_id, "status": created["status"],
                               "version": created["version"]})
    try:
        saved = api.put_document(plan_id, read.document)
    except ApiError as error:
        if error.status != 422:
            raise
        located = [
            locate_field(_document_path(e.get("loc") or []), str(e.get("msg")),
                         read.rows).as_dict()
            for e in error.errors
        ] or [{"sheet": "Plan", "row": None, "message": str(error)}]
        return _write_cell_errors(book, read, located)
    plan = saved["plan"]
    problems = locate_all(read.document, saved["diagnostics"], read.rows)
    write_statuses(book, read.document, problems, read.rows)
    write_plan_meta(book, {"plan_id": plan_id, "status": plan["status"],
                           "version": plan["version"], "plan_hash": plan.get("plan_hash")})
    return SyncResult(plan_id, saved["valid"], plan["status"], plan.get("plan_hash"), problems)


def pull(book: SheetBook, api: PaysheetApi) -> SyncResult:
    """The stored plan's status, version, hash and diagnostics, written into the workbook."""
    read = read_book(book)
    if read.plan_id is None:
        raise DesktopError("the workbook has no plan id in its Plan sheet: push it first")
    plan = api.plan(read.plan_id)
    checked = api.validate(read.plan_id)
    problems = locate_all(read.document, checked["diagnostics"], read.rows)
    write_statuses(book, read.document, problems, read.rows)
    write_plan_meta(book, {"status": plan["status"], "version": plan["version"],
                           "plan_hash": plan.get("plan_hash")})
    return SyncResult(read.plan_id, checked["valid"], plan["status"], plan.get("plan_hash"),
                      problems)


def _write_cell_errors(book: SheetBook, read: WorkbookRead,
                       located: list[dict[str, Any]]) -> SyncResult:
    write_statuses(book, read.document, located, read.rows)
    return SyncResult(read.plan_id, False, problems=located)


def _document_path(loc: Sequence[Any]) -> list[Any]:
    """A 422 error's loc (`["body", "steps", 3, "expr"]`) as a document field path."""
    return list(loc[1:]) if loc and loc[0] == "body" else list(loc)


# --- xlwings ---------------------------------------------------------------------------------


def _xlwings() -> Any:
    try:
        import xlwings
    except ImportError:
        raise DesktopError(
            "xlwings is not installed: pip install 'paysheet[desktop]' (it drives a running "
            "Excel on Windows or macOS)"
        ) from None
    return xlwings


def active_book(name: str | None = None) -> XlwingsBook:
    """The workbook open in Excel: the active one, or the one called `name`."""
    xlwings = _xlwings()
    try:
        book = xlwings.books[name] if name else xlwings.books.active
    except Exception as error:  # xlwings raises platform-specific errors without Excel
        raise DesktopError(f"no open Excel workbook{' ' + name if name else ''}: {error}"
                           ) from None
    return XlwingsBook(book)


class XlwingsBook:
    """A SheetBook over an xlwings Book: one range read or write per call, as Excel's
    automation is slow per cell. Not tested here (no Excel)."""

    def __init__(self, book: Any) -> None:
        self.book = book

    def sheet_names(self) -> list[str]:
        return [sheet.name for sheet in self.book.sheets]

    def values(self, sheet: str, rows: int, columns: int) -> list[list[Any]]:
        block = self.book.sheets[sheet].range((1, 1), (rows, columns))
        return block.options(ndim=2).value

    def write(self, sheet: str, row: int, column: int, block: Sequence[Sequence[Any]]) -> None:
        if not block:
            return
        target = self.book.sheets[sheet].range((row, column),
                                               (row + len(block) - 1,
                                                column + len(block[0]) - 1))
        if any(isinstance(value, str) for values in block for value in values):
            target.number_format = "@"  # text stays text: Excel would read "=…" as a formula
        target.value = [list(values) for values in block]

    def fill(self, sheet: str, cells: str, color: str | None) -> None:
        rgb = None if color is None else tuple(int(color[i:i + 2], 16) for i in (0, 2, 4))
        self.book.sheets[sheet].range(cells).color = rgb

    @contextlib.contextmanager
    def unprotected(self, sheet: str) -> Iterator[None]:
        """The template's sheets are protected without a password; Windows (COM) and macOS
        (AppleScript) spell the calls differently."""
        api = self.book.sheets[sheet].api
        windows = hasattr(api, "Unprotect")
        protected = api.ProtectContents if windows else api.protect_contents.get()
        if protected:
            api.Unprotect() if windows else api.unprotect()
        try:
            yield
        finally:
            if protected and windows:
                api.Protect(AllowFormattingColumns=True)
            elif protected:
                api.protect(allow_formatting_columns=True)
