"""Ed25519 key that signs audit checkpoints; the private key is stored wrapped by the root key."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from strongroom.core.errors import ConfigurationError
from strongroom.core.rootkey import RootKey

_LABEL = "strongroom/audit-signing-key"


class CheckpointSigner:
    def __init__(self, private: Ed25519PrivateKey | None, public: Ed25519PublicKey) -> None:
        self._private = private
        self.public = public
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]

    @staticmethod
    def paths(home: Path) -> tuple[Path, Path]:
        return home / "audit-signing.key.wrapped", home / "audit-signing.pub"

    @classmethod
    def create(cls, home: Path, root: RootKey) -> CheckpointSigner:
        wrapped_path, public_path = cls.paths(home)
        private = Ed25519PrivateKey.generate()
        raw = private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        wrapped_path.write_bytes(root.wrap(raw, _LABEL))
        wrapped_path.chmod(0o600)
        public_path.write_bytes(
            private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return cls(private, private.public_key())

    @classmethod
    def load(cls, home: Path, root: RootKey | None) -> CheckpointSigner:
        """Load the signer; with ``root=None`` only the public key (verification only)."""
        wrapped_path, public_path = cls.paths(home)
        if not public_path.exists():
            raise ConfigurationError(f"{public_path} is missing; was this home created by `strongroom init`?")
        public = serialization.load_pem_public_key(public_path.read_bytes())
        if not isinstance(public, Ed25519PublicKey):
            raise ConfigurationError(f"{public_path} is not an Ed25519 public key")
        private = None
        if root is not None:
            private = Ed25519PrivateKey.from_private_bytes(root.unwrap(wrapped_path.read_bytes(), _LABEL))
        return cls(private, public)

    @staticmethod
    def message(seq: int, chain_hash: str, prev: str = "") -> bytes:
        """What a checkpoint signs: the chain head, and (``prev``) the digest of the checkpoint before it.

        ``prev`` is empty only for checkpoints signed before checkpoints were chained.
        """
        if not prev:
            return f"strongroom-audit-checkpoint:{seq}:{chain_hash}".encode()
        return f"strongroom-audit-checkpoint:v2:{seq}:{chain_hash}:{prev}".encode()

    def sign(self, seq: int, chain_hash: str, prev: str = "") -> bytes:
        if self._private is None:
            raise ConfigurationError("this audit signer has no private key")
        return self._private.sign(self.message(seq, chain_hash, prev))

    def verify(self, seq: int, chain_hash: str, signature: bytes, prev: str = "") -> bool:
        try:
            self.public.verify(signature, self.message(seq, chain_hash, prev))
        except InvalidSignature:
            return False
        return True


FIRST_CHECKPOINT = "0" * 64  # what the first chained checkpoint names as its predecessor


def checkpoint_digest(seq: int, chain_hash: str, prev: str, signature: bytes) -> str:
    """The digest the next checkpoint signs over: one checkpoint cannot be dropped or replaced alone."""
    return hashlib.sha256(CheckpointSigner.message(seq, chain_hash, prev) + b":" + signature).hexdigest()
