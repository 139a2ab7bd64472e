"""Serves the Office add-in's task pane (`addin/`: HTML and ES modules, no bundler) at /addin/.

Only the pane's own files are served: node_modules, the JS tests and the npm files are not.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

ADDIN_DIR = Path(__file__).resolve().parents[3] / "addin"
PRIVATE = {"node_modules", "tests", "package.json", "package-lock.json"}


class AddinFiles(StaticFiles):
    """StaticFiles that refuses the add-in's development files."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        first = Path(path).parts[0] if Path(path).parts else ""
        if first in PRIVATE or first.startswith("."):
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


def mount(app: FastAPI) -> None:
    """Mount /addin when the add-in folder exists (it does in a source checkout)."""
    if ADDIN_DIR.is_dir():
        app.mount("/addin", AddinFiles(directory=ADDIN_DIR, html=True), name="addin")
