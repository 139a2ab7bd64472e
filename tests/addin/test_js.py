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
