"""Links the platform hands out come from its configured public URL, never from request headers."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from strongroom.api.app import create_app
from strongroom.core.platform import Platform
from strongroom.notebooks.models import PresignedUrl


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
    assert url == f"https://127.0.0.1:{platform.config.port}/notebooks/risk/lab/_signin?token=srp_abc"
