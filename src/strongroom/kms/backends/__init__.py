"""Keyring backends: ``local`` (root-key-wrapped material) and ``pkcs11`` (an HSM)."""

from __future__ import annotations

from strongroom.core.config import Config
from strongroom.core.rootkey import RootKey
from strongroom.kms.keyring import Keyring


def build_keyrings(config: Config, root: RootKey) -> dict[str, Keyring]:
    """The keyrings ``config`` asks for. ``local`` is always there (keys made with it stay
    usable); ``pkcs11`` when ``keyring = "pkcs11"``."""
    from strongroom.kms.backends.local import LocalKeyring

    rings: dict[str, Keyring] = {"local": LocalKeyring(root)}
    if config.keyring == "pkcs11":
        from strongroom.kms.backends.pkcs11 import Pkcs11Keyring, Pkcs11KeyringConfig

        rings["pkcs11"] = Pkcs11Keyring(
            Pkcs11KeyringConfig(
                module=config.pkcs11_module, token_label=config.pkcs11_token_label, pin=config.pkcs11_pin
            )
        )
    return rings
