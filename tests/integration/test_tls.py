"""The API speaks HTTPS only, TLS 1.2 or newer, with a certificate from the platform CA."""

from __future__ import annotations

import contextlib
import socket
import ssl
from pathlib import Path

import httpx
import pytest

from strongroom.core.errors import StrongroomError
from strongroom.sdk.session import Session
from tests.support import RunningServer


def test_plain_http_is_refused(server: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n")
        raw.settimeout(5)
        try:
            answer = raw.recv(4096)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"HTTP/")


def test_client_without_the_ca_fails(server: RunningServer) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{server.url}/api/v1/status", verify=True)


def test_another_ca_fails(server: RunningServer, tmp_path: Path) -> None:
    other = tmp_path / "other-home"
    from strongroom.core.config import Config
    from strongroom.platform import initialize

    initialize(Config(home=other, port=0))
    with pytest.raises(StrongroomError, match="CERTIFICATE_VERIFY_FAILED"):
        Session(url=server.url, token=server.admin_token, ca=other / "tls" / "ca.pem").whoami()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_is_refused(server: RunningServer, version: ssl.TLSVersion) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(server.ca)
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = version
    with contextlib.suppress(ssl.SSLError):
        context.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw, pytest.raises(ssl.SSLError):
        context.wrap_socket(raw, server_hostname="localhost")


def test_tls12_and_13_work_and_the_certificate_names_localhost(server: RunningServer) -> None:
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = ssl.create_default_context(cafile=str(server.ca))
        context.minimum_version = context.maximum_version = version
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_sdk_refuses_plain_http_urls(server: RunningServer) -> None:
    with pytest.raises(StrongroomError, match="HTTPS only"):
        Session(url=f"http://127.0.0.1:{server.port}", token=server.admin_token)


def test_unix_socket_serves_the_same_api_with_authentication(server: RunningServer) -> None:
    with Session(socket=server.socket, token=server.admin_token) as session:
        assert session.whoami().user == "admin"
    with httpx.Client(transport=httpx.HTTPTransport(uds=server.socket)) as client:
        response = client.get("http://x/api/v1/whoami")
    assert response.status_code == 401
    assert Path(server.socket).stat().st_mode & 0o077 == 0


def test_the_server_sends_no_tls_session_tickets(server: RunningServer) -> None:
    """TLS 1.3 tickets arrive after the handshake, while a client with a reader thread (the SDK's
    WebSocket client) is already writing its request: that race sometimes lost a notebook kernel's
    WebSocket upgrade, and the client then waited on its reader forever. No tickets, no race."""
    context = ssl.create_default_context(cafile=str(server.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 ")
        assert tls.session is not None and not tls.session.has_ticket
