"""The ``pkcs11`` keyring: team keys generated inside an HSM, non-extractable; data keys are
wrapped and unwrapped by the HSM (AES-256-GCM with the encryption context as associated data).

Tested against SoftHSM2 (Debian ``softhsm2``); any PKCS#11 v2.20+ token with CKM_AES_GCM works.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr

from strongroom.core.errors import ConfigurationError, IntegrityError
from strongroom.kms.keyring import Keyring

_FORMAT = b"\x02"
log = logging.getLogger(__name__)


class Pkcs11KeyringConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    module: str = "/usr/lib/softhsm/libsofthsm2.so"
    token_label: str = "strongroom"
    pin: SecretStr = SecretStr("")


class Pkcs11Keyring(Keyring):
    """One logged-in read-write session on the token, used under a lock (PKCS#11 sessions are
    not safe for concurrent operations)."""

    name: ClassVar[str] = "pkcs11"

    def __init__(self, config: Pkcs11KeyringConfig) -> None:
        import pkcs11

        self.config = config
        if not config.pin.get_secret_value():
            raise ConfigurationError("the pkcs11 keyring needs a PIN: set STRONGROOM_PKCS11_PIN")
        try:
            lib = pkcs11.lib(config.module)
            token = lib.get_token(token_label=config.token_label)
            self._session: Any = token.open(user_pin=config.pin.get_secret_value(), rw=True)
        except (pkcs11.PKCS11Error, RuntimeError, OSError) as exc:
            raise ConfigurationError(
                f"cannot open PKCS#11 token {config.token_label!r} with {config.module}: {type(exc).__name__} {exc}"
            ) from exc
        self._lock = threading.Lock()

    def _key(self, handle: bytes) -> Any:
        import pkcs11
        from pkcs11 import ObjectClass

        try:
            return self._session.get_key(object_class=ObjectClass.SECRET_KEY, id=handle)
        except pkcs11.NoSuchKey as exc:
            raise IntegrityError("the HSM no longer holds this key version (destroyed)") from exc

    def create_version(self, key_id: str, version: int) -> bytes:
        from pkcs11 import Attribute, KeyType

        handle = os.urandom(16)
        template = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.ENCRYPT: True,
            Attribute.DECRYPT: True,
            Attribute.WRAP: False,
            Attribute.UNWRAP: False,
            Attribute.SIGN: False,
            Attribute.VERIFY: False,
            Attribute.DERIVE: False,
        }
        with self._lock:
            self._session.generate_key(
                KeyType.AES, 256, id=handle, label=f"strongroom:{key_id}:{version}", store=True, template=template
            )
        return handle

    def wrap(self, handle: bytes, key_id: str, version: int, plaintext: bytes, aad: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        nonce = os.urandom(12)
        with self._lock:
            sealed = self._key(handle).encrypt(
                plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad, 128)
            )
        return _FORMAT + nonce + bytes(sealed)

    def unwrap(self, handle: bytes, key_id: str, version: int, wrapped: bytes, aad: bytes) -> bytes:
        import pkcs11
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        if len(wrapped) < 1 + 12 + 16 or wrapped[:1] != _FORMAT:
            raise IntegrityError("the wrapped data key is malformed")
        with self._lock:
            key = self._key(handle)
            try:
                return bytes(
                    key.decrypt(
                        wrapped[13:], mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(wrapped[1:13], aad, 128)
                    )
                )
            except pkcs11.PKCS11Error as exc:
                raise IntegrityError(
                    "the HSM refused to unwrap the data key: it or its encryption context was modified"
                ) from exc

    def destroy(self, handle: bytes, key_id: str, version: int) -> None:
        import pkcs11
        from pkcs11 import ObjectClass

        with self._lock:
            try:
                self._session.get_key(object_class=ObjectClass.SECRET_KEY, id=handle).destroy()
            except pkcs11.NoSuchKey:
                return

    def attributes(self, handle: bytes) -> dict[str, bool]:
        """Security attributes of a key version (to show it can never leave the HSM)."""
        from pkcs11 import Attribute

        with self._lock:
            key = self._key(handle)
            return {
                "sensitive": bool(key[Attribute.SENSITIVE]),
                "extractable": bool(key[Attribute.EXTRACTABLE]),
                "never_extractable": bool(key[Attribute.NEVER_EXTRACTABLE]),
                "always_sensitive": bool(key[Attribute.ALWAYS_SENSITIVE]),
            }

    def close(self) -> None:
        import pkcs11

        with self._lock:
            try:
                self._session.close()
            except pkcs11.PKCS11Error as exc:  # at shutdown: report, do not mask the real error
                log.warning("closing the PKCS#11 session failed: %s", exc)
