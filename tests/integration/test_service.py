"""Run as a service: a systemd unit that verifies, the bank's own certificate, SIGHUP reloads it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from strongroom.cli.main import app
from strongroom.core.config import Config
from tests.support import start_server

runner = CliRunner()


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Bank"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    signer: ec.EllipticCurvePrivateKey,
    ca: bool,
    valid: tuple[dt.timedelta, dt.timedelta] = (dt.timedelta(minutes=-5), dt.timedelta(days=30)),
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + valid[0])
        .not_valid_after(now + valid[1])
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(signer, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class BankPki:
    """The bank's root CA, an intermediate, and server certificates it issues."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.root_key, self.issuing_key = (
            ec.generate_private_key(ec.SECP256R1()),
            ec.generate_private_key(ec.SECP256R1()),
        )
        self.root = _cert("Bank Root CA", self.root_key, "Bank Root CA", self.root_key, ca=True)
        issuing = _cert("Bank Issuing CA", self.issuing_key, "Bank Root CA", self.root_key, ca=True)
        (folder / "bank-root.pem").write_bytes(_pem(self.root))
        (folder / "chain.pem").write_bytes(_pem(issuing))

    def issue(self, valid: tuple[dt.timedelta, dt.timedelta] | None = None) -> int:
        """A new server certificate and key at server.pem / server.key; returns its serial.

        ``valid``: from and until, relative to now (default: 5 minutes ago to 30 days on).
        """
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(
            "strongroom.bank.internal",
            key,
            "Bank Issuing CA",
            self.issuing_key,
            ca=False,
            **({"valid": valid} if valid else {}),
        )
        (self.folder / "server.pem").write_bytes(_pem(cert))
        key_path = self.folder / "server.key"
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_path.chmod(0o600)
        return int(cert.serial_number)


def _served_serial(port: int, cafile: Path) -> int:
    context = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection(("127.0.0.1", port), 5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return int(x509.load_der_x509_certificate(der).serial_number)


def test_the_banks_certificate_serves_https_and_sighup_swaps_it_without_a_restart(
    initialized: tuple[Config, str], tmp_path: Path
) -> None:
    config, token = initialized
    bank = BankPki(tmp_path)
    first = bank.issue()
    env = {
        "STRONGROOM_TLS_CERT_FILE": str(tmp_path / "server.pem"),
        "STRONGROOM_TLS_KEY_FILE": str(tmp_path / "server.key"),
        "STRONGROOM_TLS_CHAIN_FILE": str(tmp_path / "chain.pem"),
    }
    server = start_server(config, token, env=env)
    try:
        port, pid = server.info["port"], server.process.pid
        assert _served_serial(int(port), tmp_path / "bank-root.pem") == first  # the chain is served too
        with pytest.raises(ssl.SSLCertVerificationError):
            _served_serial(int(port), config.tls_dir / "ca.pem")  # no longer the platform CA's
        with httpx.Client(verify=ssl.create_default_context(cafile=str(tmp_path / "bank-root.pem"))) as client:
            answer = client.get(f"https://localhost:{port}/api/v1/status", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        status = runner.invoke(
            app,
            ["status", "--json"],
            env={"STRONGROOM_HOME": str(config.home), "STRONGROOM_CA": str(tmp_path / "bank-root.pem")},
        )
        assert status.exit_code == 0 and json.loads(status.output)["https"] == "ok"

        second = bank.issue()
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while _served_serial(int(port), tmp_path / "bank-root.pem") != second and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _served_serial(int(port), tmp_path / "bank-root.pem") == second
        assert server.process.poll() is None and server.process.pid == pid

        bank.issue(valid=(dt.timedelta(days=-400), dt.timedelta(days=-1)))  # a renewal gone wrong: expired
        server.process.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert _served_serial(int(port), tmp_path / "bank-root.pem") == second  # kept the working one

        stray = ec.generate_private_key(ec.SECP256R1())  # a renewal gone wrong: the key does not match
        (tmp_path / "server.key").write_bytes(
            stray.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        server.process.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert _served_serial(int(port), tmp_path / "bank-root.pem") == second  # kept the working one
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "reload: TLS" in log and "reload: keeping the current certificate" in log
    assert "expired on" in log


@pytest.mark.parametrize(
    ("valid", "problem"),
    [
        ((dt.timedelta(days=-400), dt.timedelta(days=-1)), "expired on"),
        ((dt.timedelta(days=1), dt.timedelta(days=400)), "is not valid before"),
        (None, "is not a PEM certificate"),
        ("encrypted key", "is encrypted; give its unencrypted PEM"),
    ],
)
def test_an_expired_future_or_unreadable_certificate_is_refused_with_the_reason(
    initialized: tuple[Config, str],
    tmp_path: Path,
    valid: tuple[dt.timedelta, dt.timedelta] | str | None,
    problem: str,
) -> None:
    config, _ = initialized
    bank = BankPki(tmp_path)
    bank.issue(valid=None if isinstance(valid, str) else valid)
    if valid is None:
        (tmp_path / "server.pem").write_text("not a certificate\n")
    elif isinstance(valid, str):  # no passphrase prompt on the terminal: a clear refusal
        key = serialization.load_pem_private_key((tmp_path / "server.key").read_bytes(), None)
        (tmp_path / "server.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"bank secret"),
            )
        )
    from strongroom.core import pki
    from strongroom.core.errors import ConfigurationError

    own = Config(
        home=config.home,
        tls_cert_file=str(tmp_path / "server.pem"),
        tls_key_file=str(tmp_path / "server.key"),
        tls_chain_file=str(tmp_path / "chain.pem"),
    )
    with pytest.raises(ConfigurationError, match=problem):
        pki.load_server_certificate(
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER),
            own,
            pki.TlsFiles.in_dir(config.tls_dir),
            None,  # type: ignore[arg-type]  # not needed for the operator's own certificate
        )


def test_a_key_readable_by_others_is_refused_at_start(initialized: tuple[Config, str], tmp_path: Path) -> None:
    config, _ = initialized
    bank = BankPki(tmp_path)
    bank.issue()
    (tmp_path / "server.key").chmod(0o644)
    from strongroom.core import pki

    with pytest.raises(Exception, match="readable by others"):
        pki.load_server_certificate(
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER),
            Config(
                home=config.home, tls_cert_file=str(tmp_path / "server.pem"), tls_key_file=str(tmp_path / "server.key")
            ),
            pki.TlsFiles.in_dir(config.tls_dir),
            None,  # type: ignore[arg-type]  # not needed for the operator's own certificate
        )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed on this host")
def test_install_service_writes_a_unit_systemd_accepts(tmp_path: Path) -> None:
    home = tmp_path / "srv" / "strongroom"
    units, env = tmp_path / "units", tmp_path / "etc" / "strongroom.env"
    result = runner.invoke(
        app,
        [
            "install-service",
            "--home",
            str(home),
            "--unit-dir",
            str(units),
            "--env-file",
            str(env),
            "--after",
            "postgresql.service",
        ],
    )
    assert result.exit_code == 0, result.output
    unit = (units / "strongroom.service").read_text()
    (exec_start,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    executable, _, arguments = exec_start.removeprefix("ExecStart=").partition(" ")
    assert Path(executable).is_file() and arguments == f"up --home {home.resolve()}"
    assert (
        f"up --home {home.resolve()}" in unit
        and "User=strongroom" in unit
        and "ExecReload=/bin/kill -HUP $MAINPID" in unit
    )
    assert oct(env.stat().st_mode & 0o777) == "0o600" and f"STRONGROOM_HOME={home.resolve()}" in env.read_text()

    verified = subprocess.run(
        ["systemd-analyze", "verify", str(units / "strongroom.service")], capture_output=True, text=True
    )
    assert verified.returncode == 0 and verified.stderr.strip() == "", verified.stderr
    # and the check would notice a broken unit
    (units / "typo.service").write_text(unit.replace("PrivateTmp=", "PrivateTemp="))
    broken = subprocess.run(["systemd-analyze", "verify", str(units / "typo.service")], capture_output=True, text=True)
    assert "Unknown key" in broken.stderr


def test_install_service_refuses_directives_smuggled_in_after_and_says_to_init_a_new_home(tmp_path: Path) -> None:
    units, env = tmp_path / "units", tmp_path / "etc" / "strongroom.env"
    common = ["install-service", "--home", str(tmp_path / "new"), "--unit-dir", str(units), "--env-file", str(env)]
    smuggled = runner.invoke(app, [*common, "--after", "postgresql.service\nExecStartPre=/bin/sh -c id"])
    assert smuggled.exit_code == 1 and "not a list of unit names" in smuggled.output
    assert not (units / "strongroom.service").exists()

    written = runner.invoke(app, [*common, "--after", "postgresql.service network.target"])
    assert written.exit_code == 0, written.output
    assert "After=network-online.target postgresql.service network.target" in (units / "strongroom.service").read_text()
    assert f"strongroom init --home {(tmp_path / 'new').resolve()}" in written.output  # `up` needs a home


def test_install_service_warns_when_the_service_user_cannot_reach_the_home(tmp_path: Path) -> None:
    closed = tmp_path / "root-like"  # as /root: 0700, owned by someone else than the service user
    closed.mkdir(mode=0o700)
    units, env = tmp_path / "units", tmp_path / "etc" / "strongroom.env"
    args = ["install-service", "--unit-dir", str(units), "--env-file", str(env), "--user", "strongroom"]

    warned = runner.invoke(app, [*args, "--home", str(closed / ".strongroom")])
    assert warned.exit_code == 0, warned.output
    assert f"cannot reach the home {(closed / '.strongroom').resolve()}" in " ".join(warned.output.split())

    open_home = Path(tempfile.mkdtemp(prefix="srv-", dir="/tmp"))  # pytest's own folder is 0700
    try:
        open_home.chmod(0o755)
        fine = runner.invoke(app, [*args, "--home", str(open_home / "strongroom")])
        assert fine.exit_code == 0 and "cannot reach the home" not in fine.output
    finally:
        shutil.rmtree(open_home)
