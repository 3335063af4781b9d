"""Storage entities: buckets, object versions, listings."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


class Bucket(BaseModel):
    name: str
    team: str
    srn: str
    uri: str
    default_key_id: str
    description: str
    has_policy: bool
    created_at: dt.datetime
    created_by: str


class BucketPolicy(BaseModel):
    bucket: str
    policy: str


class ObjectVersion(BaseModel):
    """One version of an object (or a delete marker). ``sha256`` and ``size`` are of the plaintext."""

    bucket: str
    key: str
    uri: str
    version_id: str
    is_latest: bool
    delete_marker: bool
    size: int
    sha256: str
    content_type: str
    tags: dict[str, str]
    kms_key_id: str
    kms_key_version: int
    created_at: dt.datetime
    created_by: str


class ObjectListing(BaseModel):
    bucket: str
    prefix: str
    delimiter: str
    objects: list[ObjectVersion]
    common_prefixes: list[str]
    next_page_token: str | None = None


class VersionListing(BaseModel):
    bucket: str
    prefix: str
    versions: list[ObjectVersion]
    next_page_token: str | None = None


class ObjectTags(BaseModel):
    bucket: str
    key: str
    version_id: str
    tags: dict[str, str]
