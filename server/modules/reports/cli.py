"""`paysheet verify-bundle ZIP --public-key KEY`: check an export bundle offline.

KEY is the tenant's public key as served by `GET /api/v1/tenants/{id}/signing-key`: either
a PEM file, or the base64 `public_key` value (inline or in a file). Exit 0 when the bundle
verifies, 1 when it does not (every problem is listed), 2 when the key is unusable.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from server.modules.reports.bundle import verify_bundle

EXIT_INVALID, EXIT_KEY = 1, 2


def load_public_key(key: str) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file, a file holding base64, or inline base64."""
    path = Path(key)
    text = path.read_bytes() if len(key) < 4096 and path.is_file() else key.encode()
    if b"-----BEGIN PUBLIC KEY-----" in text:
        loaded = load_pem_public_key(text)
        if not isinstance(loaded, Ed25519PublicKey):
            raise ValueError("the PEM key is not an Ed25519 public key")
        return loaded
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        raise ValueError("the key is neither a PEM file nor base64") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, this one has {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def verify_bundle_command(
    bundle: Path = typer.Argument(..., help="The export bundle (.zip)", exists=True,
                                  dir_okay=False),
    public_key: str = typer.Option(..., "--public-key",
                                   help="PEM file, or base64 public key (inline or file)"),
) -> None:
    """Verify a signed export bundle offline: signature, every file's SHA-256, no extras."""
    try:
        key = load_public_key(public_key)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_KEY) from None
    report = verify_bundle(bundle.read_bytes(), key)
    if not report.ok:
        typer.echo(f"{bundle}: NOT VERIFIED", err=True)
        for problem in report.problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(EXIT_INVALID)
    manifest = report.manifest or {}
    run = manifest.get("run", {})
    typer.echo(
        f"{bundle}: OK: {len(manifest.get('files', []))} files verified with key "
        f"{manifest.get('key_id')}; run {run.get('run_id')} ({run.get('status')}), "
        f"snapshot {run.get('snapshot_hash')}, results {run.get('results_hash')}"
    )
