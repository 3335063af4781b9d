"""What the API hands out: links from the configured public URL (never from request headers), and
the platform's own facts (its route map, its runtimes) only to callers holding a role."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from strongroom.api.app import create_app
from strongroom.core.context import Grant
from strongroom.notebooks.models import PresignedUrl
from strongroom.platform import Platform
from tests.support import context_for


def test_a_forged_host_header_never_reaches_the_sign_in_url(
    platform: Platform, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed = PresignedUrl(url="/notebooks/risk/lab/_signin?token=srp_abc", expires_at=dt.datetime.now(dt.UTC))
    monkeypatch.setattr(platform.notebooks, "presign", lambda ctx, team, name, expires_in: signed)
    with TestClient(create_app(platform), base_url="https://evil.example") as client:
        answer = client.post(
            "/api/v1/teams/risk/notebooks/lab/presigned-url",
            json={"expires_in": 60},
            headers={"Authorization": f"Bearer {admin_token}", "Host": "evil.example"},
        )
    assert answer.status_code == 201, answer.text
    url = answer.json()["url"]
    # Before: https://evil.example/notebooks/risk/lab/_signin?token=srp_abc
    assert "evil.example" not in url
    assert url == f"https://localhost:{platform.config.port}/notebooks/risk/lab/_signin?token=srp_abc"


def test_the_api_document_and_runtimes_need_a_role(platform: Platform, admin_token: str) -> None:
    admin = context_for("admin", Grant("PlatformAdmin"))
    platform.identity.create_user(admin, "nobody")
    nobody = platform.identity.create_token(admin, "t", user="nobody").secret
    with TestClient(create_app(platform), base_url="https://testserver") as client:
        for path in ("/api/openapi.json", "/api/v1/runtimes"):
            # Before: 200 with the route map / interpreter paths and package versions.
            assert client.get(path, headers={"Authorization": f"Bearer {nobody}"}).status_code == 403, path
            assert client.get(path, headers={"Authorization": f"Bearer {admin_token}"}).status_code == 200, path
        assert client.get("/api/openapi.json").status_code == 401
