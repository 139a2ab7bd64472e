"""Tenant signing keys: one active Ed25519 key per tenant, private half encrypted at rest.

The private key is stored only as AES-256-GCM ciphertext. The wrapping key is derived with
HKDF-SHA256 from the server secret (`SIGNING_KEY_SECRET`, else a random secret created once
in `<data_dir>/signing-key.secret`, mode 0600) and bound to the tenant and key id, which are
also the GCM associated data: a ciphertext copied to another tenant's row will not decrypt.
Private keys never leave the server; only `public_key_document` is ever sent to clients.
"""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.modules.audit.service import record_event
from server.modules.reports.bundle import key_id as public_key_id
from server.modules.reports.models import TenantSigningKey
from server.principal import Principal
from server.settings import Settings

SECRET_FILE = "signing-key.secret"
HKDF_SALT = b"paysheet/tenant-signing-key/v1"
MIN_SECRET_BYTES = 32


class SigningKeyUnavailable(RuntimeError):
    """The stored private key cannot be decrypted (the server secret changed or was lost)."""


def master_secret(settings: Settings) -> bytes:
    """The server secret that wraps private keys (env first, else the data-dir file)."""
    if settings.signing_key_secret:
        secret = settings.signing_key_secret.encode("utf-8")
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"SIGNING_KEY_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        return secret
    path = Path(settings.data_dir) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(base64.b64encode(os.urandom(32)) + b"\n")
    secret = path.read_bytes().strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"{path} holds too short a secret")
    return secret


def _associated_data(tenant_id: uuid.UUID, key_id: str) -> bytes:
    return f"tenant:{tenant_id}/key:{key_id}".encode()


def _wrapping_key(settings: Settings, tenant_id: uuid.UUID, key_id: str) -> AESGCM:
    derived = HKDF(hashes.SHA256(), 32, HKDF_SALT, _associated_data(tenant_id, key_id)).derive(
        master_secret(settings))
    return AESGCM(derived)


def _new_key_row(settings: Settings, tenant_id: uuid.UUID) -> TenantSigningKey:
    private = Ed25519PrivateKey.generate()
    kid = public_key_id(private.public_key())
    nonce = os.urandom(12)
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    ciphertext = _wrapping_key(settings, tenant_id, kid).encrypt(
        nonce, raw, _associated_data(tenant_id, kid))
    return TenantSigningKey(
        tenant_id=tenant_id, key_id=kid,
        public_key=private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        private_key_ciphertext=ciphertext, private_key_nonce=nonce,
    )


def _active(session: Session) -> TenantSigningKey | None:
    return session.scalar(select(TenantSigningKey).where(TenantSigningKey.retired_at.is_(None)))


def active_key(session: Session, settings: Settings, principal: Principal | None = None
               ) -> TenantSigningKey:
    """The tenant's active key, created (and audited) on first use. Two concurrent first
    uses both end with the same key: the partial unique index lets only one insert win."""
    existing = _active(session)
    if existing is not None:
        return existing
    row = _new_key_row(settings, session.info["tenant_id"])
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        winner = _active(session)
        assert winner is not None
        return winner
    record_event(session, principal_or_actor_id=principal, action="signing_key.create",
                 entity="tenant_signing_key", entity_id=row.id,
                 after={"key_id": row.key_id, "algorithm": row.algorithm})
    return row


def private_key(row: TenantSigningKey, settings: Settings) -> Ed25519PrivateKey:
    """Decrypt the row's private key (server side only)."""
    try:
        raw = _wrapping_key(settings, row.tenant_id, row.key_id).decrypt(
            row.private_key_nonce, row.private_key_ciphertext,
            _associated_data(row.tenant_id, row.key_id))
    except InvalidTag:
        raise SigningKeyUnavailable(
            f"signing key {row.key_id} cannot be decrypted: the server secret changed") from None
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key(row: TenantSigningKey) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(row.public_key)


def public_key_document(row: TenantSigningKey) -> dict[str, Any]:
    """What clients may see: the public key raw (base64) and as PEM, with its id."""
    pem = public_key(row).public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return {
        "tenant_id": str(row.tenant_id),
        "key_id": row.key_id,
        "algorithm": row.algorithm,
        "public_key": base64.b64encode(row.public_key).decode(),
        "public_key_pem": pem.decode(),
        "created_at": row.created_at.isoformat() if row.created_at else None,
    }
