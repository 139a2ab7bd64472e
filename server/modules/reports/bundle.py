"""Signed export bundles: a reproducible zip whose manifest is signed with Ed25519.

Layout: every exported file (results.csv, results.xlsx, statements/*.pdf, audit_events.json,
audit_workbook.xlsx when available), then `manifest.json` (canonical JSON: format, key id,
the run's identity and hashes, and each file's path, size and SHA-256) and `manifest.sig`
(base64 Ed25519 signature over the exact manifest bytes). Ed25519 signatures are
deterministic and nothing depends on the clock, so exporting twice gives identical bytes.

`verify_bundle` needs only the zip and the tenant's public key (offline): the signature must
match the manifest, every listed file must be present with its hash, nothing else may be in
the archive, and entry names must be safe relative paths.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from server.modules.reports.files import deterministic_zip, write_zip

FORMAT = "paysheet-export/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
RESERVED = frozenset({MANIFEST, SIGNATURE})
MAX_ENTRIES = 200_000
MAX_TOTAL_BYTES = 8 * 1024**3  # declared uncompressed size: refuse zip bombs before reading
_SAFE_PATH = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: SHA-256 of its 32 raw bytes, first 16 hex."""
    return sha256(raw_public_key(public_key))[:16]


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def safe_member_name(text: str) -> str:
    """A file name that is safe in a zip for any employee ref ('../x', '=cmd', unicode):
    unsafe characters become '_', plus a hash suffix whenever anything was changed."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", text)[:80] or "_"
    return cleaned if cleaned == text else f"{cleaned}-{sha256(text.encode())[:8]}"


def _is_safe_path(name: str) -> bool:
    return bool(_SAFE_PATH.fullmatch(name)) and not {".", ".."} & set(name.split("/"))


def _size_and_hash(payload: bytes | Path) -> tuple[int, str]:
    if isinstance(payload, bytes):
        return len(payload), sha256(payload)
    digest = hashlib.sha256()
    with payload.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return payload.stat().st_size, digest.hexdigest()


def build_manifest(files: Mapping[str, bytes | Path], run: Mapping[str, Any],
                   signer_key_id: str) -> bytes:
    """Canonical manifest bytes; `run` holds the run's identity and hashes (JSON values);
    a file is its bytes or a `Path` to them."""
    for name in files:
        if name in RESERVED or not _is_safe_path(name):
            raise ValueError(f"bundle file name {name!r} is not allowed")
    listed = []
    for name in sorted(files):
        size, digest = _size_and_hash(files[name])
        listed.append({"path": name, "size": size, "sha256": digest})
    return canonical_json({
        "format": FORMAT,
        "algorithm": "Ed25519",
        "key_id": signer_key_id,
        "run": dict(run),
        "files": listed,
    })


def _signed_entries(files: Mapping[str, bytes | Path], run: Mapping[str, Any],
                    private_key: Ed25519PrivateKey) -> list[tuple[str, bytes | Path]]:
    manifest = build_manifest(files, run, key_id(private_key.public_key()))
    signature = base64.b64encode(private_key.sign(manifest)) + b"\n"
    entries = [(name, files[name]) for name in sorted(files)]
    return [*entries, (MANIFEST, manifest), (SIGNATURE, signature)]


def build_bundle(files: Mapping[str, bytes], run: Mapping[str, Any],
                 private_key: Ed25519PrivateKey) -> bytes:
    """The signed zip: files in name order, then manifest.json and manifest.sig."""
    return deterministic_zip(_signed_entries(files, run, private_key))


def write_bundle(target: BinaryIO, files: Mapping[str, bytes | Path], run: Mapping[str, Any],
                 private_key: Ed25519PrivateKey) -> None:
    """`build_bundle` into a seekable file, reading `Path` files from disk one at a time
    (same bytes as `build_bundle` for the same content)."""
    write_zip(target, _signed_entries(files, run, private_key))


@dataclass
class Verification:
    """Outcome of `verify_bundle`: `ok` only when `problems` is empty."""

    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _read_members(data: bytes, report: Verification) -> dict[str, bytes] | None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as error:  # hostile bytes: any parse failure means "not verified"
        report.problems.append(f"not a zip archive: {error}")
        return None
    members: dict[str, bytes] = {}
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            report.problems.append(f"too many entries ({len(infos)})")
            return None
        if sum(info.file_size for info in infos) > MAX_TOTAL_BYTES:
            report.problems.append("the archive declares more than 8 GiB of content")
            return None
        for info in infos:
            if info.filename in members:
                report.problems.append(f"duplicate entry {info.filename!r}")
                continue
            if not _is_safe_path(info.filename):
                report.problems.append(f"unsafe entry name {info.filename!r}")
                continue
            try:
                members[info.filename] = archive.read(info)
            except Exception as error:  # CRC, zlib, unsupported method, truncation...
                report.problems.append(f"{info.filename}: cannot be read ({error})")
    return members


def _check_signature(members: dict[str, bytes], public_key: Ed25519PublicKey,
                     report: Verification) -> bool:
    if MANIFEST not in members or SIGNATURE not in members:
        report.problems.append("manifest.json or manifest.sig is missing")
        return False
    try:
        signature = base64.b64decode(members[SIGNATURE].removesuffix(b"\n"), validate=True)
        if base64.b64encode(signature) + b"\n" != members[SIGNATURE]:
            raise ValueError("manifest.sig is not exactly one base64 line")
        public_key.verify(signature, members[MANIFEST])
    except (InvalidSignature, binascii.Error, ValueError):
        report.problems.append("manifest signature does not verify with this public key")
        return False
    return True


def verify_bundle(data: bytes, public_key: Ed25519PublicKey) -> Verification:
    """Check a bundle offline; every problem found is listed."""
    report = Verification()
    members = _read_members(data, report)
    if members is None or not _check_signature(members, public_key, report):
        return report
    manifest = json.loads(members[MANIFEST])
    report.manifest = manifest
    if manifest.get("format") != FORMAT:
        report.problems.append(f"unknown bundle format {manifest.get('format')!r}")
    listed = {entry["path"]: entry for entry in manifest.get("files", [])}
    for path, entry in sorted(listed.items()):
        payload = members.get(path)
        if payload is None:
            report.problems.append(f"{path}: listed in the manifest but missing")
        elif sha256(payload) != entry["sha256"] or len(payload) != entry["size"]:
            report.problems.append(f"{path}: SHA-256 does not match the manifest")
    for path in sorted(set(members) - set(listed) - RESERVED):
        report.problems.append(f"{path}: in the archive but not in the manifest")
    return report
