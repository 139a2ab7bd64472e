"""Virus scanning against a REAL clamd (Debian package `clamav-daemon`).

The fixture starts clamd on a temp unix socket with a one-line signature database that
matches the EICAR test string, so no signature download is needed. A machine without clamd
FAILS these tests: CI must `apt-get install clamav-daemon`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.modules.uploads.scanning import ClamdScanner, NoScanner
from server.settings import Settings
from tests.uploads.conftest import API, multipart, tus_upload

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SIGNATURE = "Paysheet.Test.EICAR"


def _clamd_binary() -> str:
    for candidate in (shutil.which("clamd"), "/usr/sbin/clamd"):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("clamd is not installed: apt-get install clamav-daemon (needed by this test)")


def _pong(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(path))
            sock.sendall(b"zPING\0")
            return sock.recv(16) == b"PONG\0"
    except OSError:
        return False


@pytest.fixture(scope="module")
def clamd_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = _clamd_binary()
    workdir = tmp_path_factory.mktemp("clamd")
    (workdir / "db").mkdir()
    (workdir / "db" / "eicar.ndb").write_text(
        f"{SIGNATURE}:0:*:{b'EICAR-STANDARD-ANTIVIRUS-TEST-FILE'.hex()}\n")
    sock = workdir / "clamd.sock"
    config = workdir / "clamd.conf"
    config.write_text(f"LocalSocket {sock}\nForeground yes\nDatabaseDirectory {workdir}/db\n"
                      f"LogFile {workdir}/clamd.log\nTemporaryDirectory {workdir}\n"
                      "StreamMaxLength 64M\n")
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        for _ in range(1200):  # start-up readiness poll: clamd answers PING once loaded
            if process.poll() is not None:
                log_file = workdir / "clamd.log"
                log = log_file.read_text() if log_file.exists() else ""
                pytest.fail(f"clamd exited with {process.returncode}: {log[-2000:]}")
            if _pong(sock):
                break
            time.sleep(0.05)
        else:
            pytest.fail("clamd did not start")
        yield str(sock)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def scanning_client(settings: Settings, clamd_socket: str,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    scanned = settings.model_copy(update={"clamd_socket": clamd_socket,
                                          "data_dir": tmp_path_factory.mktemp("scanned")})
    with TestClient(create_app(scanned)) as client:
        yield client


def test_scanner_verdicts(clamd_socket, tmp_path) -> None:
    infected, clean = tmp_path / "eicar.csv", tmp_path / "clean.csv"
    infected.write_bytes(EICAR)
    clean.write_bytes(b"employee_ref\nE1\n")
    result = ClamdScanner(clamd_socket).scan(infected)
    assert (result.verdict, result.signature) == ("infected", f"{SIGNATURE}.UNOFFICIAL")
    assert ClamdScanner(clamd_socket).scan(clean).verdict == "clean"
    assert ClamdScanner(str(tmp_path / "nowhere.sock")).scan(clean).verdict == "error"
    assert NoScanner().scan(clean).verdict == "not_scanned"


def test_eicar_upload_is_refused_deleted_and_audited(scanning_client, make_tenant) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    data = b"employee_ref,note\nE1," + EICAR + b"\n"
    upload_id = tus_upload(scanning_client, headers, data, filename="payroll.csv", chunk=40)
    body = scanning_client.get(f"{API}/uploads/{upload_id}", headers=headers).json()
    assert body["status"] == "failed"
    assert body["scan"]["verdict"] == "infected"
    assert f"infected ({SIGNATURE}.UNOFFICIAL)" in body["error"]
    assert body["received_bytes"] == 0  # the file is gone
    audit = scanning_client.get(f"{API}/audit", params={"entity_id": upload_id},
                                headers=tenant.users["admin"].headers).json()["items"]
    assert audit[0]["action"] == "upload.infected"
    assert audit[0]["after"]["scan"]["signature"] == f"{SIGNATURE}.UNOFFICIAL"
    refused = multipart(scanning_client, headers, EICAR)
    assert refused.status_code == 422 and "infected" in refused.json()["detail"]


def test_clean_upload_passes_the_scan(scanning_client, make_tenant) -> None:
    headers = make_tenant().users["hr"].headers
    response = multipart(scanning_client, headers, b"employee_ref,team\nE1,T1\n")
    assert response.status_code == 201
    assert response.json()["scan"]["verdict"] == "clean"
    assert response.json()["phase"] == "uploaded"
