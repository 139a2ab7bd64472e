"""Node.js for the add-in tests: find node/npm (missing → the test fails, never skips) and
install addin/node_modules with `npm ci` once, under a file lock (pytest-xdist workers)."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

ADDIN = Path(__file__).resolve().parents[2] / "addin"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"'{name}' is not installed: the add-in tests need Node.js 20+ and npm"
    return path


def _installed() -> bool:
    lock = ADDIN / "package-lock.json"
    marker = ADDIN / "node_modules" / ".package-lock.json"
    return marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime


def ensure_node_modules() -> None:
    """`npm ci` in addin/ unless node_modules matches package-lock.json already."""
    npm = tool("npm")
    with open(ADDIN / "package-lock.json", "rb") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            if not _installed():
                install = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=ADDIN,
                                         capture_output=True, text=True)
                assert install.returncode == 0, install.stdout + install.stderr
        finally:
            fcntl.flock(guard, fcntl.LOCK_UN)
