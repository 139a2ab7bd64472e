"""The key-encryption key (KEK) behind every tenant's data keys, behind a pluggable KMS.

A KMS wraps and unwraps 32-byte data keys; it never sees personal data. Two shapes:

- `LocalKeyFileKms` (the embedded default): `<data_dir>/pii-keys.json` or `PII_KEY_FILE`,
  created with one random 256-bit KEK and mode 0600 when absent, refused when group or
  others may read it. It holds KEK *versions* (`{"active": id, "keys": {id: base64}}`):
  `paysheet keys rotate` adds a version, rewraps every data key under it and only then
  drops the versions no data key names any more.
- A cloud KMS (AWS KMS, GCP Cloud KMS, Azure Key Vault, HashiCorp Vault transit): set
  `PII_KMS=package.module:ClassName`; the class is built as `ClassName(settings)` and
  implements `Kms` below. Example, AWS (boto3 is not a dependency of Paysheet)::

      class AwsKms:
          def __init__(self, settings):
              self.client = boto3.client("kms")
              self.key_arn = os.environ["PII_KMS_KEY_ARN"]
          @property
          def active_kek_id(self) -> str:
              return self.key_arn
          def wrap(self, plaintext, context):
              out = self.client.encrypt(KeyId=self.key_arn, Plaintext=plaintext,
                                        EncryptionContext={"paysheet": context.decode()})
              return self.key_arn, out["CiphertextBlob"]
          def unwrap(self, kek_id, wrapped, context):
              return self.client.decrypt(KeyId=kek_id, CiphertextBlob=wrapped,
                                         EncryptionContext={"paysheet": context.decode()}
                                         )["Plaintext"]
          def retire(self, kek_ids):  # the cloud KMS keeps and rotates its own versions
              return []

`context` binds a wrapped key to its tenant and version: a wrapped key copied onto another
tenant's row does not unwrap.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import secrets
import stat
from pathlib import Path
from threading import Lock
from typing import Protocol

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.errors import ProblemError
from server.keyfile import create_private_json, write_private_json
from server.settings import Settings

log = structlog.get_logger(__name__)
KEY_FILE = "pii-keys.json"
KEY_BYTES = 32
NONCE_BYTES = 12


class KeyUnavailable(ProblemError):
    """A data key cannot be unwrapped: its KEK is missing, wrong or the wrapping altered.
    API clients get a 503 without server paths; `str()` (logs, the CLI) has the detail."""

    def __init__(self, message: str) -> None:
        super().__init__(503, "Encryption key unavailable",
                         "the data cannot be decrypted: the server's key-encryption key is "
                         "unavailable or wrong; an operator must restore the PII key file "
                         "or KMS access (see the server log)")
        self.message = message
        log.error("pii_key_unavailable", detail=message)

    def __str__(self) -> str:
        return self.message


class Kms(Protocol):
    """What the data keys need from a key-management service."""

    @property
    def active_kek_id(self) -> str: ...

    def wrap(self, plaintext: bytes, context: bytes) -> tuple[str, bytes]:
        """`plaintext` (a data key) encrypted under the active KEK: (KEK id, wrapped)."""
        ...

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        """The data key back; KeyUnavailable when KEK `kek_id` cannot open it."""
        ...

    def retire(self, kek_ids: set[str]) -> list[str]:
        """Forget KEK versions no data key uses any more (those in `kek_ids` stay)."""
        ...




class LocalKeyFileKms:
    """KEK versions in a local JSON file (mode 0600). Re-read when the file changes, so a
    rotation by `paysheet keys rotate` reaches running servers and workers."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = Lock()
        self._stamp: tuple[int, int] | None = None
        self._active = ""
        self._keys: dict[str, bytes] = {}
        if not self.path.exists():
            self._create()
        self._load()

    def _create(self) -> None:
        kek_id = "kek-" + secrets.token_hex(6)
        create_private_json(self.path, {"format": 1, "active": kek_id, "keys": {
            kek_id: base64.b64encode(os.urandom(KEY_BYTES)).decode()}})

    def _load(self) -> None:
        with self._lock:
            try:
                info = self.path.stat()
            except FileNotFoundError:
                raise KeyUnavailable(f"the PII key file {self.path} is missing: restore it "
                                     "from its backup (data keys cannot be unwrapped "
                                     "without it)") from None
            stamp = (info.st_mtime_ns, info.st_ino)
            if stamp == self._stamp:
                return
            if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise KeyUnavailable(f"the PII key file {self.path} is readable by group or "
                                     f"others (mode {stat.S_IMODE(info.st_mode):o}): "
                                     f"chmod 600 {self.path}")
            try:
                document = json.loads(self.path.read_text())
                keys = {k: base64.b64decode(v, validate=True)
                        for k, v in document["keys"].items()}
                active = document["active"]
            except (ValueError, KeyError, TypeError) as error:
                raise KeyUnavailable(f"the PII key file {self.path} is damaged "
                                     f"({type(error).__name__}): restore it from its backup"
                                     ) from None
            if active not in keys or any(len(k) != KEY_BYTES for k in keys.values()):
                raise KeyUnavailable(f"the PII key file {self.path} is damaged: the active "
                                     "KEK is not listed or a KEK is not 32 bytes")
            self._keys, self._active, self._stamp = keys, active, stamp

    @property
    def active_kek_id(self) -> str:
        self._load()
        return self._active

    @property
    def kek_ids(self) -> list[str]:
        self._load()
        return list(self._keys)

    def wrap(self, plaintext: bytes, context: bytes) -> tuple[str, bytes]:
        self._load()
        nonce = os.urandom(NONCE_BYTES)
        kek_id = self._active
        return kek_id, nonce + AESGCM(self._keys[kek_id]).encrypt(nonce, plaintext, context)

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        self._load()
        key = self._keys.get(kek_id)
        if key is None:
            raise KeyUnavailable(f"KEK '{kek_id}' is not in the PII key file {self.path} "
                                 f"(it holds {', '.join(self._keys)}): restore the key file "
                                 "that wrapped this data key")
        try:
            return AESGCM(key).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], context)
        except InvalidTag:
            raise KeyUnavailable(f"KEK '{kek_id}' of {self.path} does not open this data key "
                                 "(wrong key file, or the wrapped key was altered or copied "
                                 "from another tenant)") from None

    def add_version(self) -> str:
        """A new random KEK version, made active; the older versions stay."""
        self._load()
        kek_id = "kek-" + secrets.token_hex(6)
        keys = {k: base64.b64encode(v).decode() for k, v in self._keys.items()}
        keys[kek_id] = base64.b64encode(os.urandom(KEY_BYTES)).decode()
        write_private_json(self.path, {"format": 1, "active": kek_id, "keys": keys})
        self._load()
        return kek_id

    def retire(self, kek_ids: set[str]) -> list[str]:
        self._load()
        keep = {k: v for k, v in self._keys.items() if k in kek_ids or k == self._active}
        gone = [k for k in self._keys if k not in keep]
        if gone:
            write_private_json(self.path, {"format": 1, "active": self._active, "keys": {
                k: base64.b64encode(v).decode() for k, v in keep.items()}})
            self._load()
        return gone


def key_file_path(settings: Settings) -> Path:
    return Path(settings.pii_key_file or Path(settings.data_dir) / KEY_FILE)


_cache: dict[tuple[str, str], Kms] = {}
_cache_lock = Lock()


def kms_for(settings: Settings) -> Kms:
    """The KMS `settings` name (one instance per key file or class, per process)."""
    spec = settings.pii_kms or "local"
    key = (spec, str(key_file_path(settings).resolve()) if spec == "local" else "")
    with _cache_lock:
        if key not in _cache:
            _cache[key] = _build(spec, settings)
        return _cache[key]


def _build(spec: str, settings: Settings) -> Kms:
    if spec == "local":
        return LocalKeyFileKms(key_file_path(settings))
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"PII_KMS '{spec}' is neither 'local' nor 'package.module:Class'")
    return getattr(importlib.import_module(module), name)(settings)
