"""Virus scanning: a `Scanner` interface, ClamAV over clamd's INSTREAM, and a no-op scanner.

`CLAMD_SOCKET` selects the scanner: a unix socket path (`/run/clamav/clamd.ctl`) or
`host:port` (`tcp://clamav:3310` also works). Without it every file is recorded as
"not scanned" rather than silently passing as clean. Scanner failures (clamd down, stream
too long for clamd's `StreamMaxLength`) fail closed: the upload is refused.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

CHUNK = 1024 * 1024
Verdict = Literal["clean", "infected", "not_scanned", "error"]


@dataclass(frozen=True)
class ScanResult:
    verdict: Verdict
    scanner: str
    signature: str | None = None
    detail: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"verdict": self.verdict, "scanner": self.scanner,
                "signature": self.signature, "detail": self.detail}


class Scanner(Protocol):
    def scan(self, path: Path) -> ScanResult: ...


class NoScanner:
    """Used when no scanner is configured: the verdict says so instead of claiming clean."""

    def scan(self, path: Path) -> ScanResult:
        return ScanResult("not_scanned", "none", detail="no virus scanner configured")


class ClamdScanner:
    """Streams the file to clamd with INSTREAM in 1 MiB chunks (never the whole file)."""

    def __init__(self, address: str, timeout_seconds: float = 120.0) -> None:
        self.address = address
        self.timeout = timeout_seconds

    def _connect(self) -> socket.socket:
        address = self.address.removeprefix("tcp://").removeprefix("unix://")
        if "/" in address:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            sock.connect(address)
            return sock
        host, _, port = address.rpartition(":")
        return socket.create_connection((host or "127.0.0.1", int(port)), timeout=self.timeout)

    def scan(self, path: Path) -> ScanResult:
        try:
            with self._connect() as sock, path.open("rb") as source:
                sock.sendall(b"zINSTREAM\0")
                while chunk := source.read(CHUNK):
                    sock.sendall(struct.pack(">I", len(chunk)) + chunk)
                sock.sendall(struct.pack(">I", 0))
                reply = _read_reply(sock)
        except OSError as error:
            return ScanResult("error", "clamd", detail=f"clamd unreachable: {error}")
        return parse_reply(reply)


def _read_reply(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\0"):
        part = sock.recv(4096)
        if not part:
            break
        data += part
    return data.rstrip(b"\0").decode("utf-8", "replace").strip()


def parse_reply(reply: str) -> ScanResult:
    """`stream: OK`, `stream: <signature> FOUND` or `<message> ERROR`."""
    body = reply.split(":", 1)[1].strip() if reply.startswith("stream:") else reply
    if body == "OK":
        return ScanResult("clean", "clamd")
    if body.endswith(" FOUND"):
        return ScanResult("infected", "clamd", signature=body.removesuffix(" FOUND").strip())
    return ScanResult("error", "clamd", detail=body or "empty reply from clamd")


def scanner_from_settings(clamd_socket: str | None, timeout_seconds: float) -> Scanner:
    return ClamdScanner(clamd_socket, timeout_seconds) if clamd_socket else NoScanner()
