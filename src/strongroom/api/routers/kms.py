"""Customer-managed keys: lifecycle, aliases, key policies, data keys."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from strongroom.api.deps import context, platform
from strongroom.api.pagination import Page
from strongroom.core.context import RequestContext
from strongroom.core.errors import InvalidInput
from strongroom.kms.models import DecryptedDataKey, GeneratedDataKey, Key, KeyPolicy
from strongroom.platform import Platform

router = APIRouter(prefix="/api/v1", tags=["kms"])
Ctx = Annotated[RequestContext, Depends(context)]
P = Annotated[Platform, Depends(platform)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateKey(Strict):
    alias: str = Field(max_length=64)
    description: str = Field(default="", max_length=1024)
    keyring: str | None = Field(default=None, max_length=32)
    rotation_period_days: int | None = Field(default=None, ge=1, le=3650)


class ScheduleDeletion(Strict):
    waiting_period_seconds: int | None = Field(default=None, ge=0)


class Rotation(Strict):
    rotation_period_days: int | None = Field(default=None, ge=1, le=3650)


class CreateAlias(Strict):
    alias: str = Field(max_length=64)


class PolicyBody(Strict):
    policy: str = Field(max_length=65536)


class DataKeyRequest(Strict):
    encryption_context: dict[str, str] = Field(default_factory=dict)


class DecryptRequest(Strict):
    ciphertext_blob: str = Field(max_length=4096)
    encryption_context: dict[str, str] = Field(default_factory=dict)


@router.post("/teams/{team}/keys", status_code=201)
def create_key(team: str, body: CreateKey, ctx: Ctx, p: P) -> Key:
    return p.kms.create_key(
        ctx,
        team,
        body.alias,
        body.description,
        keyring=body.keyring,
        rotation_period_days=body.rotation_period_days,
    )


@router.get("/teams/{team}/keys")
def list_keys(team: str, ctx: Ctx, p: P) -> Page[Key]:
    return Page[Key](items=p.kms.list_keys(ctx, team))


@router.get("/teams/{team}/keys/{key}")
def describe_key(team: str, key: str, ctx: Ctx, p: P) -> Key:
    return p.kms.describe_key(ctx, team, key)


@router.post("/teams/{team}/keys/{key}/enable")
def enable_key(team: str, key: str, ctx: Ctx, p: P) -> Key:
    return p.kms.set_enabled(ctx, team, key, True)


@router.post("/teams/{team}/keys/{key}/disable")
def disable_key(team: str, key: str, ctx: Ctx, p: P) -> Key:
    return p.kms.set_enabled(ctx, team, key, False)


@router.post("/teams/{team}/keys/{key}/rotate")
def rotate_key(team: str, key: str, ctx: Ctx, p: P) -> Key:
    return p.kms.rotate(ctx, team, key)


@router.put("/teams/{team}/keys/{key}/rotation")
def set_rotation(team: str, key: str, body: Rotation, ctx: Ctx, p: P) -> Key:
    return p.kms.set_rotation(ctx, team, key, body.rotation_period_days)


@router.post("/teams/{team}/keys/{key}/schedule-deletion")
def schedule_deletion(team: str, key: str, body: ScheduleDeletion, ctx: Ctx, p: P) -> Key:
    return p.kms.schedule_deletion(ctx, team, key, body.waiting_period_seconds)


@router.post("/teams/{team}/keys/{key}/cancel-deletion")
def cancel_deletion(team: str, key: str, ctx: Ctx, p: P) -> Key:
    return p.kms.cancel_deletion(ctx, team, key)


@router.post("/teams/{team}/keys/{key}/aliases", status_code=201)
def create_alias(team: str, key: str, body: CreateAlias, ctx: Ctx, p: P) -> Key:
    return p.kms.create_alias(ctx, team, body.alias, key)


@router.delete("/teams/{team}/key-aliases/{alias}", status_code=204)
def delete_alias(team: str, alias: str, ctx: Ctx, p: P) -> Response:
    p.kms.delete_alias(ctx, team, alias)
    return Response(status_code=204)


@router.put("/teams/{team}/keys/{key}/policy")
def put_key_policy(team: str, key: str, body: PolicyBody, ctx: Ctx, p: P) -> KeyPolicy:
    return p.kms.put_key_policy(ctx, team, key, body.policy)


@router.get("/teams/{team}/keys/{key}/policy")
def get_key_policy(team: str, key: str, ctx: Ctx, p: P) -> KeyPolicy:
    return p.kms.get_key_policy(ctx, team, key)


@router.post("/teams/{team}/keys/{key}/generate-data-key")
def generate_data_key(team: str, key: str, body: DataKeyRequest, ctx: Ctx, p: P) -> GeneratedDataKey:
    """Client-side envelope encryption: a fresh data key, in plaintext and wrapped."""
    made = p.kms.generate_data_key(ctx, team, key, body.encryption_context)
    return GeneratedDataKey(
        key_id=made.key_id,
        key_version=made.key_version,
        plaintext=base64.b64encode(made.plaintext).decode(),
        ciphertext_blob=base64.b64encode(made.wrapped).decode(),
    )


@router.post("/teams/{team}/decrypt")
def decrypt(team: str, body: DecryptRequest, ctx: Ctx, p: P) -> DecryptedDataKey:
    try:
        blob = base64.b64decode(body.ciphertext_blob, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("ciphertext_blob must be base64", field="ciphertext_blob") from exc
    opened = p.kms.decrypt(ctx, team, blob, body.encryption_context)
    return DecryptedDataKey(
        key_id=opened.key_id, key_version=opened.key_version, plaintext=base64.b64encode(opened.plaintext).decode()
    )
