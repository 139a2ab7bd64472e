"""Runs the task pane's JavaScript tests (`node --test`, office-addin-mock) from pytest, so
`make test` covers them. Node 20+ and npm are required: a missing node fails, never skips."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ADDIN = Path(__file__).resolve().parents[2] / "addin"


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"'{name}' is not installed: the add-in tests need Node.js 20+ and npm"
    return path


def _dependencies_installed() -> bool:
    lock = ADDIN / "package-lock.json"
    installed = ADDIN / "node_modules" / ".package-lock.json"
    return installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime


def test_addin_javascript_suite_passes():
    node, npm = _tool("node"), _tool("npm")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    assert int(version.stdout.strip().lstrip("v").split(".")[0]) >= 20, version.stdout
    if not _dependencies_installed():
        install = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=ADDIN,
                                 capture_output=True, text=True)
        assert install.returncode == 0, install.stdout + install.stderr
    tests = sorted(str(p.relative_to(ADDIN)) for p in (ADDIN / "tests").glob("*.test.js"))
    result = subprocess.run([node, "--test", *tests], cwd=ADDIN, capture_output=True,
                            text=True)
    summary = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# fail 0" in summary and any(
        line.startswith("# pass ") and int(line.split()[-1]) > 0 for line in summary
    ), summary
