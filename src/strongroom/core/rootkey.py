"""The platform root key: wraps every other platform secret (CA key, signing keys, local keys).

The root key comes from, in order: ``STRONGROOM_ROOT_KEY`` (base64 of 32 bytes),
``STRONGROOM_ROOT_PASSPHRASE`` (stretched with scrypt and a salt kept in the home), or the file
``$STRONGROOM_HOME/root.key`` (mode 0600). A check value stored in the home detects a wrong key
at start-up instead of at the first decryption.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from strongroom.core.errors import ConfigurationError, IntegrityError

KEY_BYTES = 32
_WRAP_VERSION = b"\x01"
_CHECK_LABEL = "strongroom/root-check"
_CHECK_PLAINTEXT = b"strongroom root key check"


class RootKey:
    """A 256-bit key; derives purpose-bound subkeys and wraps secrets with AES-256-GCM."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ConfigurationError("the root key must be exactly 32 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "RootKey(**********)"

    def derive(self, label: str, length: int = 32) -> bytes:
        """A subkey bound to ``label`` (HKDF-SHA256); different labels never share keys."""
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label.encode()).derive(self._key)

    def wrap(self, plaintext: bytes, label: str) -> bytes:
        """Encrypt ``plaintext``; ``label`` is bound as associated data."""
        nonce = os.urandom(12)
        return _WRAP_VERSION + nonce + AESGCM(self.derive("strongroom/wrap")).encrypt(nonce, plaintext, label.encode())

    def unwrap(self, blob: bytes, label: str) -> bytes:
        if len(blob) < 1 + 12 + 16 or blob[:1] != _WRAP_VERSION:
            raise IntegrityError(f"wrapped secret {label!r} is malformed")
        try:
            return AESGCM(self.derive("strongroom/wrap")).decrypt(blob[1:13], blob[13:], label.encode())
        except InvalidTag as exc:
            raise IntegrityError(
                f"wrapped secret {label!r} failed authentication: wrong root key or tampered file"
            ) from exc


def _from_passphrase(passphrase: str, home: Path) -> bytes:
    salt_path = home / "root.salt"
    if not salt_path.exists():
        salt_path.write_bytes(os.urandom(16))
    kdf = Scrypt(salt=salt_path.read_bytes(), length=KEY_BYTES, n=2**15, r=8, p=1)
    return kdf.derive(passphrase.encode())


def load_root_key(home: Path, *, create: bool = False) -> RootKey:
    """Load (or with ``create``, make) the root key for ``home`` and check it."""
    env_key = os.environ.get("STRONGROOM_ROOT_KEY")
    passphrase = os.environ.get("STRONGROOM_ROOT_PASSPHRASE")
    key_file = home / "root.key"
    if env_key:
        try:
            raw = base64.b64decode(env_key, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigurationError("STRONGROOM_ROOT_KEY must be base64 of 32 bytes") from exc
    elif passphrase:
        raw = _from_passphrase(passphrase, home)
    elif key_file.exists():
        if key_file.stat().st_mode & 0o077:
            raise ConfigurationError(f"{key_file} is readable by others; run: chmod 600 {key_file}")
        try:
            raw = base64.b64decode(key_file.read_bytes().strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigurationError(f"{key_file} must hold base64 of 32 bytes, as `strongroom init` wrote it") from exc
    elif create:
        raw = secrets.token_bytes(KEY_BYTES)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(raw) + b"\n")
    else:
        raise ConfigurationError(
            f"no root key: {key_file} is missing and neither STRONGROOM_ROOT_KEY nor STRONGROOM_ROOT_PASSPHRASE is set"
        )
    root = RootKey(raw)
    check = home / "root.check"
    if check.exists():
        try:
            root.unwrap(check.read_bytes(), _CHECK_LABEL)
        except IntegrityError as exc:
            raise ConfigurationError(
                "the root key does not match this home (wrong STRONGROOM_ROOT_KEY or passphrase?)"
            ) from exc
    elif create:
        check.write_bytes(root.wrap(_CHECK_PLAINTEXT, _CHECK_LABEL))
    return root
