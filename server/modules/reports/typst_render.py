"""Statement PDFs with Typst: the template is compiled once per process, data is JSON.

Why Typst: bulk statements must cost <= 25 ms of CPU each (ARCHITECTURE.md); WeasyPrint
needs ~0.4 s for the same two pages, Typst a few ms (bench/reports.py prints both). The
compiler is created once per process (fonts loaded once) and reused; every statement only
swaps `sys.inputs.data`. Fonts come from the Debian package fonts-dejavu-core (plus Typst's
embedded fonts); system fonts are ignored so output does not depend on the machine, and
nothing is fetched: no packages are imported by the template. The PDF timestamp is fixed,
so the same statement always gives the same bytes (the export bundle is reproducible).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from server.modules.reports.letter import letter_data
from server.modules.reports.statement import Statement

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
STATEMENT_TEMPLATE = TEMPLATES / "statement.typ"
FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu")]
FIXED_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)

_local = threading.local()  # a Compiler is not shared between threads


def _compiler(template: Path) -> Any:
    import typst  # native extension: only where statements are made

    compilers = getattr(_local, "compilers", None)
    if compilers is None:
        compilers = _local.compilers = {}
    if template not in compilers:
        fonts = [str(folder) for folder in FONT_DIRS if folder.is_dir()]
        compilers[template] = typst.Compiler(str(template), root=str(template.parent),
                                             font_paths=fonts, ignore_system_fonts=True)
    return compilers[template]


def compile_typst(template: Path, data: dict[str, Any],
                  fmt: Literal["pdf", "png"] = "pdf", ppi: float = 110.0) -> bytes | list[bytes]:
    """`template` with `data` as `sys.inputs.data`; PNG gives one image per page."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    compiler = _compiler(template)
    if fmt == "png":
        return compiler.compile(format="png", ppi=ppi, sys_inputs={"data": payload})
    return compiler.compile(format="pdf", sys_inputs={"data": payload},
                            timestamp=FIXED_TIMESTAMP)


def statement_pdf_typst(statement: Statement) -> bytes:
    """The statement letter as PDF (Typst)."""
    result = compile_typst(STATEMENT_TEMPLATE, letter_data(statement))
    assert isinstance(result, bytes)
    return result


def statement_png_pages(statement: Statement, ppi: float = 110.0) -> list[bytes]:
    """The statement's pages as PNG images (for looking at it)."""
    result = compile_typst(STATEMENT_TEMPLATE, letter_data(statement), "png", ppi)
    return result if isinstance(result, list) else [result]
