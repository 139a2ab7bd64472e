"""Runs the task pane's JavaScript tests (`node --test`, office-addin-mock) from pytest, so
`make test` covers them. Node 20+ and npm are required: a missing node fails, never skips."""

from __future__ import annotations

import subprocess

from tests.addin.node import ADDIN, ensure_node_modules, tool


def test_addin_javascript_suite_passes():
    node = tool("node")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    assert int(version.stdout.strip().lstrip("v").split(".")[0]) >= 20, version.stdout
    ensure_node_modules()
    tests = sorted(str(p.relative_to(ADDIN)) for p in (ADDIN / "tests").glob("*.test.js"))
    result = subprocess.run([node, "--test", *tests], cwd=ADDIN, capture_output=True,
                            text=True)
    summary = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# fail 0" in summary and any(
        line.startswith("# pass ") and int(line.split()[-1]) > 0 for line in summary
    ), summary


def test_every_pane_module_parses():
    """The page modules the unit tests do not import (runpanel.js and taskpane.js need a DOM)
    still load in the browser: a syntax error there leaves the pane a dead page."""
    node = tool("node")
    modules = sorted([*(ADDIN / "src").glob("*.js"), *(ADDIN / "tests" / "browser").glob("*.mjs")])
    assert any(path.name == "runpanel.js" for path in modules)
    failed = {path.name: result.stderr[-800:] for path in modules
              if (result := subprocess.run([node, "--check", str(path)], capture_output=True,
                                           text=True)).returncode != 0}
    assert failed == {}
