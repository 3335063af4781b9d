"""The platform CA: issues the server certificate (and, later, Dask node certificates).

The CA private key is stored wrapped by the root key; the server key is stored as an
encrypted PEM whose password is derived from the root key, so no private key lies on disk
in the clear.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from strongroom.core.config import Config
from strongroom.core.errors import ConfigurationError
from strongroom.core.fileio import atomic_write
from strongroom.core.rootkey import RootKey

_CA_LABEL = "strongroom/ca-key"
_CA_DAYS = 3650
_LEAF_DAYS = 397


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    ca_key_wrapped: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def in_dir(cls, directory: Path) -> TlsFiles:
        return cls(
            ca_cert=directory / "ca.pem",
            ca_key_wrapped=directory / "ca.key.wrapped",
            server_cert=directory / "server.pem",
            server_key=directory / "server.key.enc",
        )


def key_password(root: RootKey, name: str) -> str:
    """The password protecting the encrypted PEM of leaf key ``name``."""
    return base64.urlsafe_b64encode(root.derive(f"strongroom/pem/{name}")).decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Strongroom"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def create_ca(files: TlsFiles, root: RootKey) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Strongroom platform CA"))
        .issuer_name(_name("Strongroom platform CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    files.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.ca_key_wrapped.write_bytes(root.wrap(der, _CA_LABEL))
    files.ca_key_wrapped.chmod(0o600)


def _load_ca(files: TlsFiles, root: RootKey) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    key = serialization.load_der_private_key(root.unwrap(files.ca_key_wrapped.read_bytes(), _CA_LABEL), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def issue_ephemeral(
    files: TlsFiles, root: RootKey, *, common_name: str, dns_names: list[str], ip_addresses: list[str]
) -> tuple[bytes, bytes]:
    """A short-lived (1 day) certificate and its unencrypted key, as PEM bytes, for one job's
    cluster. The caller keeps the key in memory-backed storage only."""
    ca_cert, ca_key = _load_ca(files, root)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys(dns_names) if n]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in dict.fromkeys(ip_addresses)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def issue_leaf(
    files: TlsFiles,
    root: RootKey,
    *,
    common_name: str,
    dns_names: list[str],
    ip_addresses: list[str],
    cert_path: Path,
    key_path: Path,
    client: bool = False,
) -> None:
    """Issue a certificate signed by the platform CA; the key is written as encrypted PEM."""
    ca_cert, ca_key = _load_ca(files, root)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys(dns_names) if n]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in dict.fromkeys(ip_addresses)]
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_LEAF_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    password = key_password(root, key_path.name).encode()
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
    )
    key_path.chmod(0o600)


def server_names(public_hostname: str = "") -> tuple[list[str], list[str]]:
    return ["localhost", socket.gethostname(), public_hostname], ["127.0.0.1", "::1"]


def issue_server_cert(files: TlsFiles, root: RootKey, public_hostname: str = "") -> None:
    dns, ips = server_names(public_hostname)
    issue_leaf(
        files,
        root,
        common_name="strongroom-api",
        dns_names=dns,
        ip_addresses=ips,
        cert_path=files.server_cert,
        key_path=files.server_key,
    )


def server_cert_needs_renewal(files: TlsFiles, days: int = 30) -> bool:
    if not files.server_cert.exists():
        return True
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    return cert.not_valid_after_utc < dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


def load_server_certificate(context: ssl.SSLContext, config: Config, files: TlsFiles, root: RootKey) -> str:
    """Load the HTTPS certificate into ``context``: the operator's (``tls_cert_file``) or the platform CA's.

    Calling it again on a serving context replaces the certificate for the next handshakes
    (SIGHUP). Returns a description of what was loaded, for the log.

    Raises:
        ConfigurationError: the files are incomplete or missing, the key is readable by others,
            the certificate is not PEM, expired or not yet valid, or it does not match the key;
            the context keeps what it had.
    """
    if not (config.tls_cert_file or config.tls_key_file):
        context.load_cert_chain(
            str(files.server_cert), str(files.server_key), password=key_password(root, files.server_key.name)
        )
        return f"platform CA certificate {files.server_cert}"
    if not (config.tls_cert_file and config.tls_key_file):
        raise ConfigurationError("set both tls_cert_file and tls_key_file (and tls_chain_file for intermediates)")
    cert, key = Path(config.tls_cert_file).expanduser(), Path(config.tls_key_file).expanduser()
    chain = Path(config.tls_chain_file).expanduser() if config.tls_chain_file else None
    for path, field in ((cert, "tls_cert_file"), (key, "tls_key_file"), (chain, "tls_chain_file")):
        if path is not None and not path.is_file():
            raise ConfigurationError(f"{path} does not exist or is not a file", field=field)
    if key.stat().st_mode & 0o077:
        raise ConfigurationError(f"{key} is readable by others; run: chmod 600 {key}", field="tls_key_file")
    pem = cert.read_bytes()
    leaf = _valid_leaf(cert, pem)
    if chain is not None:
        pem = pem.rstrip(b"\n") + b"\n" + chain.read_bytes()
    full_chain = files.server_cert.parent / "own-fullchain.pem"
    atomic_write(full_chain, pem)
    try:
        # A password callback, so that an encrypted key fails here instead of OpenSSL prompting
        # for its passphrase on the terminal (a hang at start, or in the reload thread on SIGHUP).
        context.load_cert_chain(str(full_chain), str(key), password=functools.partial(_encrypted_key, key))
    except ssl.SSLError as exc:
        raise ConfigurationError(f"{cert} and {key} cannot be used together: {exc}", field="tls_key_file") from exc
    until = f"{leaf.not_valid_after_utc:%Y-%m-%d}"
    return f"{cert} ({leaf.subject.rfc4514_string()}, serial {leaf.serial_number:x}, until {until})"


def _valid_leaf(path: Path, pem: bytes) -> x509.Certificate:
    """The first certificate of ``path``, checked to be valid now (clients refuse any other)."""
    try:
        leaf = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not a PEM certificate: {exc}", field="tls_cert_file") from exc
    now = dt.datetime.now(dt.UTC)
    if leaf.not_valid_after_utc <= now:
        raise ConfigurationError(
            f"{path} expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; install the renewed certificate",
            field="tls_cert_file",
        )
    if leaf.not_valid_before_utc > now:
        raise ConfigurationError(
            f"{path} is not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (check this host's clock)",
            field="tls_cert_file",
        )
    return leaf


def _encrypted_key(key: Path) -> bytes:
    raise ConfigurationError(
        f"{key} is encrypted; give its unencrypted PEM (mode 0600): openssl pkey -in {key} -out NEW.key",
        field="tls_key_file",
    )
