"""Keyring backends: ``local`` (root-key-wrapped material) and ``pkcs11`` (an HSM)."""
