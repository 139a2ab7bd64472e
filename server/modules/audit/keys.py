"""Audit MAC keys: held by the server process, never by a database role.

Every audit event carries HMAC-SHA256 under the tenant-independent *active* key, tagged with
the key's id; checkpoints too. Verification looks each event's key up by id, so rotating
(adding a new key and making it active) never breaks older events. Keys come from:

- `AUDIT_KEYS` (`id:base64,id:base64`, at least 32 bytes each) with `AUDIT_ACTIVE_KEY`
  (default: the last listed), for deployments that inject secrets; or
- `<data_dir>/audit-keys.json` (mode 0600), created with one random key on first use;
  `paysheet audit rotate-key` appends a key and makes it active.

`Keyring` is the seam for a cloud KMS: anything with `active_key_id` and `key(key_id)`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from server.keyfile import create_private_json, write_private_json
from server.settings import Settings

KEY_FILE = "audit-keys.json"
MIN_KEY_BYTES = 32


class UnknownAuditKey(KeyError):
    """An event names a key id the keyring does not hold (lost or foreign key)."""


class Keyring(Protocol):
    """What the audit chain needs from a key store (a KMS adapter implements the same)."""

    @property
    def active_key_id(self) -> str: ...

    def key(self, key_id: str) -> bytes: ...


@dataclass(frozen=True)
class StaticKeyring:
    """Keys held in memory (from settings or the key file)."""

    keys: dict[str, bytes]
    active: str

    @property
    def active_key_id(self) -> str:
        return self.active

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise UnknownAuditKey(key_id) from None


def _decoded(key_id: str, text: str) -> bytes:
    raw = base64.b64decode(text)
    if len(raw) < MIN_KEY_BYTES:
        raise ValueError(f"audit key '{key_id}' must be at least {MIN_KEY_BYTES} bytes")
    return raw


def parse_keys(spec: str, active: str | None) -> StaticKeyring:
    """`id:base64,id:base64` (AUDIT_KEYS) into a keyring; `active` defaults to the last id."""
    keys: dict[str, bytes] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key_id, _, text = part.partition(":")
        if not key_id or not text:
            raise ValueError(f"AUDIT_KEYS entry {part[:12]!r}… is not id:base64")
        keys[key_id] = _decoded(key_id, text)
    if not keys:
        raise ValueError("AUDIT_KEYS holds no key")
    chosen = active or list(keys)[-1]
    if chosen not in keys:
        raise ValueError(f"AUDIT_ACTIVE_KEY '{chosen}' is not in AUDIT_KEYS")
    return StaticKeyring(keys, chosen)


def _new_key_id() -> str:
    return "k" + secrets.token_hex(6)



def _read_file(path: Path) -> StaticKeyring:
    document = json.loads(path.read_text())
    keys = {key_id: _decoded(key_id, text) for key_id, text in document["keys"].items()}
    if document["active"] not in keys:
        raise ValueError(f"{path}: active key '{document['active']}' is not listed")
    return StaticKeyring(keys, document["active"])


def file_keyring(data_dir: Path) -> StaticKeyring:
    """The key file under `data_dir`, created with one random key when missing (a complete
    file is linked into place, so a concurrent reader never sees half of one)."""
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        key_id = _new_key_id()
        create_private_json(path, {"active": key_id,
                                   "keys": {key_id: base64.b64encode(os.urandom(32)).decode()}})
    return _read_file(path)


def rotate_file_key(data_dir: Path) -> str:
    """Add a fresh key to the key file and make it active; old keys stay for verification."""
    current = file_keyring(data_dir)
    key_id = _new_key_id()
    keys = {k: base64.b64encode(v).decode() for k, v in current.keys.items()}
    keys[key_id] = base64.b64encode(os.urandom(32)).decode()
    write_private_json(Path(data_dir) / KEY_FILE, {"active": key_id, "keys": keys})
    return key_id


def keyring_from_settings(settings: Settings) -> StaticKeyring:
    if settings.audit_keys:
        return parse_keys(settings.audit_keys, settings.audit_active_key)
    return file_keyring(settings.data_dir)


def mac(keyring: Keyring, key_id: str, material: str) -> str:
    """HMAC-SHA256 of `material` under key `key_id` (hex)."""
    return hmac.new(keyring.key(key_id), material.encode("utf-8"), hashlib.sha256).hexdigest()


def mac_matches(keyring: Keyring, key_id: str, material: str, given: str) -> bool:
    return hmac.compare_digest(mac(keyring, key_id, material), given)
