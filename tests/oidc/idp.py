"""A real OpenID provider for the sign-in tests: the certified npm `oidc-provider`, installed
with `npm ci` into tests/oidc/ (package-lock.json) and started per test module on a free port
with its own clients, accounts (groups claim included), clients it misbehaves for (HOSTILE)
and, optionally, a clock that runs behind. Also a small "browser": an httpx client that
follows the provider's redirects and fills its login and consent forms."""

from __future__ import annotations

import fcntl
import json
import re
import selectors
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from tests.addin.node import tool

HERE = Path(__file__).resolve().parent
CALLBACK = "http://testserver/api/v1/auth/oidc/callback"
OTHER_CALLBACK = "http://127.0.0.1:9/other/callback"
CLIENT_ID, CLIENT_SECRET = "paysheet", "paysheet-client-secret-4711"
OTHER_ID, OTHER_SECRET = "other-app", "other-app-secret-0815"
START_BOUND_SECONDS = 30.0

# Clients of our callback whose token responses the provider alters (provider.mjs `hostile`):
# an ID token for another audience, one tampered in transit, one signed by a foreign key.
HOSTILE = {"paysheet-wrong-audience": "audience", "paysheet-tampered": "tamper",
           "paysheet-foreign-key": "foreign-key"}


def registered_client(client_id: str, secret: str, redirect_uri: str) -> dict[str, Any]:
    return {"client_id": client_id, "client_secret": secret, "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code"], "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic"}


CLIENTS = [
    registered_client(CLIENT_ID, CLIENT_SECRET, CALLBACK),
    registered_client(OTHER_ID, OTHER_SECRET, OTHER_CALLBACK),
    *(registered_client(client_id, CLIENT_SECRET, CALLBACK) for client_id in HOSTILE),
]

ACCOUNTS = {
    "alice": {"email": "alice@fund.example", "email_verified": True, "name": "Alice Manager",
              "groups": ["paysheet-managers", "team-T01", "team-T02", "all-staff"]},
    "hannah": {"email": "hannah@fund.example", "email_verified": True, "name": "Hannah HR",
               "groups": ["paysheet-hr", "all-staff"]},
    "bob": {"email": "bob@fund.example", "email_verified": True, "name": "Bob",
            "groups": ["all-staff"]},
    "carol": {"email": "carol@fund.example", "email_verified": False, "name": "Carol",
              "groups": ["paysheet-hr"]},
}


def ensure_installed() -> None:
    """`npm ci` in tests/oidc unless node_modules matches the lock file (xdist-safe)."""
    npm = tool("npm")
    lock = HERE / "package-lock.json"
    with open(lock, "rb") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            marker = HERE / "node_modules" / ".package-lock.json"
            if not (marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime):
                done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE,
                                      capture_output=True, text=True)
                assert done.returncode == 0, done.stdout + done.stderr
        finally:
            fcntl.flock(guard, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Provider:
    issuer: str


@contextmanager
def running_provider(tmp: Path, clock_offset_seconds: int = 0,
                     extra_clients: tuple[dict[str, Any], ...] = ()) -> Iterator[Provider]:
    """Start oidc-provider (bounded wait for its `listening <issuer>` line), stop it after.
    `extra_clients` (see `registered_client`): e.g. one whose redirect URI is a live server's."""
    ensure_installed()
    config = tmp / f"idp-{clock_offset_seconds}.json"
    config.write_text(json.dumps({"clients": [*CLIENTS, *extra_clients], "accounts": ACCOUNTS,
                                  "clockOffsetSeconds": clock_offset_seconds,
                                  "hostile": HOSTILE, "hostileAudience": OTHER_ID}))
    log = (tmp / f"idp-{clock_offset_seconds}.log").open("w")
    process = subprocess.Popen([tool("node"), str(HERE / "provider.mjs"), str(config)],
                               cwd=HERE, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_BOUND_SECONDS
        line = ""
        while not line.startswith("listening ") and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if selector.select(timeout=0.5):
                line = process.stdout.readline()
        assert line.startswith("listening "), f"oidc-provider did not start ({line!r}): {log.name}"
        yield Provider(line.split()[1])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')
PROMPT = re.compile(r'name="prompt" value="([a-z]+)"')


def through_provider(browser: httpx.Client, url: str, account: str, stop_at: str) -> str:
    """Follow redirects from `url` at the provider, signing in as `account` and consenting,
    until a redirect leaves for `stop_at`; returns that URL (code and state in its query)."""
    for _ in range(20):
        if url.startswith(stop_at):
            return url
        response = browser.get(url)
        while response.status_code in (302, 303):
            url = urljoin(str(response.url), response.headers["location"])
            if url.startswith(stop_at):
                return url
            response = browser.get(url)
        assert response.status_code == 200, (response.status_code, response.text[:500])
        action, prompt = FORM_ACTION.search(response.text), PROMPT.search(response.text)
        assert action and prompt, response.text[:500]
        form = {"prompt": prompt.group(1)}
        if prompt.group(1) == "login":
            form |= {"login": account, "password": "any"}
        posted = browser.post(urljoin(str(response.url), action.group(1)), data=form)
        assert posted.status_code in (302, 303), (posted.status_code, posted.text[:500])
        url = urljoin(str(posted.url), posted.headers["location"])
    raise AssertionError("the provider kept the browser in a loop")


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
