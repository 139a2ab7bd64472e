"""The real task pane in headless Chromium (Debian `chromium`, driven by playwright-core) against
a live server on the test database, with the in-memory Office.js stand-in: sign in → sync →
step error in the sheet → fix → test vectors → lock. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.addin.node import ADDIN, ensure_node_modules, tool

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The test app served by uvicorn on a free loopback port, stopped afterwards."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(400):
        if server.started:
            started.set()
            break
        thread.join(0.025)
    assert started.is_set(), "the live server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join()


def test_task_pane_in_chromium(live_server, make_tenant):
    node = tool("node")
    chromium = tool("chromium")  # Debian's package; playwright never downloads a browser
    ensure_node_modules()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    hr = make_tenant().users["hr"]
    env = os.environ | {"BASE_URL": live_server, "EMAIL": hr.email, "PASSWORD": hr.password,
                        "ARTIFACTS": str(ARTIFACTS), "CHROMIUM": chromium}
    result = subprocess.run([node, "tests/browser/pane.browser.mjs"], cwd=ADDIN, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "browser flow passed" in result.stdout
    for name in ("addin-1-step-error.png", "addin-2-locked.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000, name
