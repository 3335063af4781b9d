"""KMS entities: customer-managed keys, their versions and aliases, and data keys."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel

from strongroom.core.secrets import Secret

KeyState = Literal["Enabled", "Disabled", "PendingDeletion", "Destroyed"]
KEY_STATES: tuple[KeyState, ...] = ("Enabled", "Disabled", "PendingDeletion", "Destroyed")


class KeyVersion(BaseModel):
    version: int
    state: Literal["Enabled", "Destroyed"]
    created_at: dt.datetime
    destroyed_at: dt.datetime | None = None


class Key(BaseModel):
    """A team's customer-managed key. Its material never leaves the keyring unwrapped."""

    id: str
    team: str
    srn: str
    aliases: list[str]
    description: str
    keyring: str
    state: KeyState
    primary_version: int
    versions: list[KeyVersion]
    rotation_period_days: int | None
    next_rotation_at: dt.datetime | None
    deletion_date: dt.datetime | None
    has_policy: bool
    created_at: dt.datetime
    created_by: str


class KeyPolicy(BaseModel):
    key_id: str
    policy: str


class DataKey:
    """A fresh data key: its plaintext (use once, then drop) and its wrapped form (store it)."""

    __slots__ = ("key_id", "key_version", "plaintext", "wrapped")

    def __init__(self, key_id: str, key_version: int, plaintext: bytes, wrapped: bytes) -> None:
        self.key_id = key_id
        self.key_version = key_version
        self.plaintext = plaintext
        self.wrapped = wrapped

    def __repr__(self) -> str:
        return f"DataKey(key_id={self.key_id!r}, key_version={self.key_version}, plaintext={Secret('')!r})"


class GeneratedDataKey(BaseModel):
    """The API's answer to GenerateDataKey (client-side encryption)."""

    key_id: str
    key_version: int
    plaintext: str  # base64
    ciphertext_blob: str  # base64


class DecryptedDataKey(BaseModel):
    key_id: str
    key_version: int
    plaintext: str  # base64
