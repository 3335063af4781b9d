"""The ``local`` keyring: key material generated here and stored wrapped by the root key."""

from __future__ import annotations

import os
from typing import ClassVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict

from strongroom.core.errors import IntegrityError
from strongroom.core.rootkey import RootKey
from strongroom.kms.keyring import Keyring

_FORMAT = b"\x01"


class LocalKeyringConfig(BaseModel):
    """No settings: the material is protected by the platform root key."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalKeyring(Keyring):
    """Each key version is 32 random bytes, kept only as ``root.wrap(material)`` in the database.

    Destroying a version deletes that wrapped copy; what the database's own backups still hold
    is outside its reach (see docs/encryption.md, crypto-shredding).
    """

    name: ClassVar[str] = "local"

    def __init__(self, root: RootKey, config: LocalKeyringConfig | None = None) -> None:
        self._root = root
        self.config = config or LocalKeyringConfig()

    @staticmethod
    def _label(key_id: str, version: int) -> str:
        return f"strongroom/kms/{key_id}/{version}"

    def create_version(self, key_id: str, version: int) -> bytes:
        return self._root.wrap(os.urandom(32), self._label(key_id, version))

    def _cipher(self, handle: bytes, key_id: str, version: int) -> AESGCM:
        return AESGCM(self._root.unwrap(handle, self._label(key_id, version)))

    def wrap(self, handle: bytes, key_id: str, version: int, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return _FORMAT + nonce + self._cipher(handle, key_id, version).encrypt(nonce, plaintext, aad)

    def unwrap(self, handle: bytes, key_id: str, version: int, wrapped: bytes, aad: bytes) -> bytes:
        if len(wrapped) < 1 + 12 + 16 or wrapped[:1] != _FORMAT:
            raise IntegrityError("the wrapped data key is malformed")
        try:
            return self._cipher(handle, key_id, version).decrypt(wrapped[1:13], wrapped[13:], aad)
        except InvalidTag as exc:
            raise IntegrityError(
                "the wrapped data key does not open under this key with this encryption context"
            ) from exc

    def destroy(self, handle: bytes, key_id: str, version: int) -> None:
        return None  # the handle is the only copy; the service erases it
