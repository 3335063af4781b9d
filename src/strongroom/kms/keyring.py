"""The ``Keyring`` interface: where team key material lives and where data keys are wrapped.

A keyring never hands out a team key. It creates key versions, wraps and unwraps data keys
with them (binding associated data), and destroys them. The KMS service stores only the
opaque handle ``create_version`` returns.
"""

from __future__ import annotations

import abc
from typing import ClassVar


class Keyring(abc.ABC):
    """One place team keys live (the platform's root-key-wrapped store, or an HSM)."""

    name: ClassVar[str]

    @abc.abstractmethod
    def create_version(self, key_id: str, version: int) -> bytes:
        """Create new key material for ``key_id`` version ``version``; return its handle."""

    @abc.abstractmethod
    def wrap(self, handle: bytes, key_id: str, version: int, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt a data key under the key version ``handle``, binding ``aad``."""

    @abc.abstractmethod
    def unwrap(self, handle: bytes, key_id: str, version: int, wrapped: bytes, aad: bytes) -> bytes:
        """Decrypt a wrapped data key; raise ``IntegrityError`` if it or ``aad`` does not match."""

    @abc.abstractmethod
    def destroy(self, handle: bytes, key_id: str, version: int) -> None:
        """Destroy the key material for good (crypto-shredding). Idempotent."""

    def close(self) -> None:
        """Release sessions and handles (at platform shutdown)."""
        return None
