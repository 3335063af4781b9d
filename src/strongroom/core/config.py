"""One frozen ``Config``, read from ``$STRONGROOM_HOME/config.toml`` and ``STRONGROOM_*``.

Precedence: explicit arguments > environment > config.toml > defaults. Defaults are the
embedded, single-machine choices (SQLite, local keyring, local blob store).
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from strongroom.core.errors import ConfigurationError


def default_home() -> Path:
    return Path(os.environ.get("STRONGROOM_HOME", "~/.strongroom")).expanduser()


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.data: dict[str, Any] = {}
        if path.is_file():
            try:
                self.data = tomllib.loads(path.read_text())
            except tomllib.TOMLDecodeError as exc:
                raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


class Config(BaseSettings):
    """Platform configuration. Unknown keys are rejected so typos do not go unnoticed."""

    model_config = SettingsConfigDict(env_prefix="STRONGROOM_", extra="forbid", frozen=True)

    home: Path = Field(default_factory=default_home)
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8443, ge=0, le=65535)
    public_hostname: str = ""
    # The URL users reach the platform at (links it hands out, such as notebook sign-in URLs, are
    # built from it, never from request headers); empty: https://<public_hostname or host>:<port>.
    public_url: str = ""
    socket_path: str = ""
    tls_min_version: str = "1.2"
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_chain_file: str = ""
    session_ttl_seconds: int = Field(default=3600, ge=60, le=86400)
    # The web console: a session ends after session_ttl_seconds, or sooner after this long unused.
    console_idle_seconds: int = Field(default=900, ge=60, le=86400)
    # Single sign-on to the web console (OpenID Connect, authorization code + PKCE); docs/console.md.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr = SecretStr("")
    oidc_ca_file: str = ""
    oidc_display_name: str = "single sign-on"
    oidc_user_claim: str = "preferred_username"
    oidc_groups_claim: str = ""
    oidc_group_roles: dict[str, list[str]] = Field(default_factory=dict)
    execution_ttl_seconds: int = Field(default=900, ge=60, le=86400)
    default_token_ttl_days: int = Field(default=90, ge=1, le=3650)
    max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    request_timeout_seconds: float = Field(default=60.0, gt=0)
    # HTTP limits every listener enforces before any authentication work (docs/security.md).
    http_max_header_bytes: int = Field(default=64 * 1024, ge=4096, le=1024 * 1024)
    http_max_header_count: int = Field(default=100, ge=16, le=10_000)
    http_header_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    http_body_idle_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # An endpoint invocation's whole body must arrive within this, else 408 (docs/serving.md).
    invocation_body_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    # Where sandboxes' cgroups are made (docs/sandbox.md); a path with no cgroup hierarchy means
    # rlimits only, which the platform reports at start and in `strongroom status`.
    sandbox_cgroup_root: str = "/sys/fs/cgroup"
    audit_checkpoint_every: int = Field(default=1000, ge=1)
    audit_checkpoint_seconds: float = Field(default=60.0, gt=0)
    # Signed checkpoints are also appended outside the database; see docs/security.md.
    audit_witness_file: str = ""
    audit_witness_syslog: str = ""
    # How long a write's Idempotency-Key is remembered (guard/idempotency.py; docs/api.md).
    idempotency_retention_days: float = Field(default=30.0, gt=0)
    sqlite_synchronous: str = "NORMAL"
    log_level: str = "info"
    log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    log_backup_count: int = Field(default=5, ge=0, le=1000)
    # Keys (KMS) and encrypted storage; see docs/encryption.md.
    keyring: str = "local"
    pkcs11_module: str = "/usr/lib/softhsm/libsofthsm2.so"
    pkcs11_token_label: str = "strongroom"
    pkcs11_pin: SecretStr = SecretStr("")
    key_deletion_min_waiting_seconds: int = Field(default=7 * 86400, ge=0)
    key_deletion_default_waiting_seconds: int = Field(default=30 * 86400, ge=0)
    kms_worker_interval_seconds: float = Field(default=60.0, gt=0)
    blob_store: str = "local"
    blob_store_path: str = ""
    blob_store_url: str = ""
    blob_store_options: dict[str, Any] = Field(default_factory=dict)
    orphan_blob_grace_seconds: float = Field(default=3600.0, ge=0)
    # Jobs; see docs/jobs.md.
    job_slots: int = Field(default=2, ge=1, le=256)
    job_max_scratch_mb: int = Field(default=8192, ge=16)
    job_max_instance_count: int = Field(default=4, ge=1, le=64)
    job_runtime_dir: str = ""
    spot_preemption_probability: float = Field(default=0.0, ge=0, le=1)
    # Model monitoring; see docs/monitoring.md.
    monitor_capture_lag_seconds: float = Field(default=10.0, ge=0, le=3600)
    # Detective controls' alerts: an https:// webhook and the CA bundle to verify it.
    alert_webhook_url: str = ""
    alert_webhook_ca: str = ""
    # Hosts a team's own alert webhook may name although they resolve to a loopback, private or
    # link-local address (refused otherwise); see docs/monitoring.md.
    alert_team_webhook_allowed_hosts: list[str] = Field(default_factory=list)
    openlineage_url: str = ""
    openlineage_file: str = ""
    openlineage_namespace: str = "strongroom"
    # Catalog and notebooks; see docs/catalog.md and docs/notebooks.md.
    catalog_worker_interval_seconds: float = Field(default=1.0, gt=0)
    notebook_volumes_path: str = ""
    notebook_runtime_dir: str = ""
    notebook_ready_timeout_seconds: float = Field(default=180.0, gt=0)
    notebook_stop_grace_seconds: float = Field(default=10.0, ge=0)
    presigned_url_max_seconds: int = Field(default=300, ge=10, le=3600)
    package_index_url: str = ""

    @field_validator("tls_min_version")
    @classmethod
    def _tls(cls, value: str) -> str:
        if value not in ("1.2", "1.3"):
            raise ValueError("tls_min_version must be '1.2' or '1.3'")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.lower() not in ("debug", "info", "warning", "error", "critical"):
            raise ValueError("log_level must be debug, info, warning, error or critical")
        return value.lower()

    @field_validator("keyring")
    @classmethod
    def _keyring(cls, value: str) -> str:
        if value not in ("local", "pkcs11"):
            raise ValueError("keyring must be 'local' or 'pkcs11'")
        return value

    @field_validator("blob_store")
    @classmethod
    def _blob_store(cls, value: str) -> str:
        if value not in ("local", "fsspec"):
            raise ValueError("blob_store must be 'local' or 'fsspec'")
        return value

    @field_validator("package_index_url")
    @classmethod
    def _package_index(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("package_index_url must be an https:// (or http:// on a trusted network) URL, or empty")
        return value.rstrip("/")

    @field_validator("sqlite_synchronous")
    @classmethod
    def _sync(cls, value: str) -> str:
        if value.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError("sqlite_synchronous must be NORMAL, FULL or EXTRA")
        return value.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        home = Path(init_settings().get("home") or default_home()).expanduser()
        return (init_settings, env_settings, _TomlSource(settings_cls, home / "config.toml"))

    def effective_public_url(self, port: int | None = None) -> str:
        """The configured public URL, or ``https://<public_hostname or host>:<port>`` (``port``: the bound
        one; a loopback or wildcard host is named ``localhost``, the name the server certificate holds)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        loopback_or_any = self.host in ("127.0.0.1", "0.0.0.0", "::1", "::")
        host = self.public_hostname or ("localhost" if loopback_or_any else self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{port or self.port}"

    # Derived locations inside the home.
    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'strongroom.db'}"

    @property
    def effective_socket_path(self) -> Path:
        return Path(self.socket_path) if self.socket_path else self.home / "run" / "api.sock"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def effective_job_runtime_dir(self) -> Path:
        """Where running jobs' tokens and configs live: memory-backed, never on disk."""
        if self.job_runtime_dir:
            return Path(self.job_runtime_dir)
        home_id = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        # A tmpfs, so job secrets never reach a disk; ownership is checked where it is created.
        return Path("/dev/shm") / f"strongroom-{os.getuid()}" / home_id  # noqa: S108

    @property
    def audit_witness_path(self) -> Path:
        """The append-only file of signed audit checkpoints."""
        return (
            Path(self.audit_witness_file).expanduser()
            if self.audit_witness_file
            else self.home / "audit" / "checkpoints.log"
        )

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def effective_notebook_volumes_path(self) -> Path:
        return Path(self.notebook_volumes_path).expanduser() if self.notebook_volumes_path else self.home / "notebooks"

    @property
    def effective_notebook_runtime_dir(self) -> Path:
        """Sockets and short-lived tokens of running notebooks: on tmpfs (/dev/shm) when the host has it."""
        if self.notebook_runtime_dir:
            return Path(self.notebook_runtime_dir).expanduser()
        shm = Path("/dev/shm")  # noqa: S108 -- memory-backed, private subdirectory (0700)
        if shm.is_dir() and os.access(shm, os.W_OK):
            digest = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:10]
            return shm / f"strongroom-{os.getuid()}-{digest}"
        return self.home / "run" / "nb"

    @property
    def effective_blob_store_path(self) -> Path:
        return Path(self.blob_store_path).expanduser() if self.blob_store_path else self.home / "blobs"


DEFAULT_CONFIG_TOML = """\
# Strongroom platform configuration.
# Every key can also be set with an environment variable STRONGROOM_<KEY> (upper case).

# Database. Empty = embedded SQLite at $STRONGROOM_HOME/strongroom.db (WAL mode).
# For PostgreSQL: "postgresql+psycopg://user@host:5432/dbname"
database_url = "{database_url}"

# HTTPS listener (there is no plain-HTTP listener). Port 0 picks a free port.
host = "127.0.0.1"
port = {port}
# Extra DNS name put in the server certificate (localhost, 127.0.0.1 and this host's
# name are always included).
public_hostname = ""
# The URL users reach the platform at; links the platform hands out (notebook sign-in URLs)
# are built from it, never from request headers. Empty: https://<public_hostname or host>:<port>.
public_url = ""
# Minimum TLS version: "1.2" or "1.3".
tls_min_version = "1.2"
# Your own certificate (PEM) for the HTTPS API and the notebook proxy, issued by your CA, instead of
# the platform CA's: the certificate, its unencrypted key (mode 0600) and the intermediate chain.
# Re-read on SIGHUP (`systemctl reload strongroom`). Clients then verify with your CA
# (STRONGROOM_CA=/path/to/your-ca.pem).
tls_cert_file = ""
tls_key_file = ""
tls_chain_file = ""

# Unix domain socket for sandboxes (empty = $STRONGROOM_HOME/run/api.sock).
socket_path = ""

# Lifetimes.
session_ttl_seconds = 3600       # assume-role session tokens and web console sessions
console_idle_seconds = 900       # a web console session unused this long ends sooner

# Single sign-on to the web console with OpenID Connect (see docs/console.md). Users are matched
# by oidc_user_claim to existing Strongroom users; with oidc_groups_claim, only the roles that
# oidc_group_roles maps from the user's groups (and that the user holds) are used. Anyone else
# gets no access. Keep the secret out of this file: STRONGROOM_OIDC_CLIENT_SECRET.
oidc_issuer = ""                 # e.g. "https://idp.example.com/realms/bank"
oidc_client_id = ""
oidc_ca_file = ""                # CA bundle for the identity provider (empty: the system's)
oidc_display_name = "single sign-on"
oidc_user_claim = "preferred_username"
oidc_groups_claim = ""           # e.g. "groups"
# [oidc_group_roles]             # group -> roles ("Role@team" or a platform role)
# "risk-data-scientists" = ["DataScientist@risk"]
execution_ttl_seconds = 900      # execution-role tokens of notebooks and jobs (auto-refreshed)
default_token_ttl_days = 90      # API tokens

# Limits.
max_request_bytes = 16777216     # larger bodies are refused with 413 (streaming uploads excepted)
request_timeout_seconds = 60
# HTTP limits on every listener, checked before authentication (see docs/security.md).
http_max_header_bytes = 65536        # request line + headers; larger heads get 431 and are closed
http_max_header_count = 100          # more header lines get 431
http_header_timeout_seconds = 10     # TLS handshake and request head must arrive within this (408)
http_body_idle_timeout_seconds = 30  # a request body that pauses longer is cut off
invocation_body_timeout_seconds = 10  # an endpoint invocation's body must be in within this (408)

# Sandboxes: each gets its own cgroup (memory incl. tmpfs, processes, CPU) under this hierarchy.
# Without usable cgroups they get rlimits only, and `strongroom status` says so (docs/sandbox.md).
sandbox_cgroup_root = "/sys/fs/cgroup"

# A write sent with an Idempotency-Key (every tracking batch) is remembered this many days: a
# retry within it returns the first answer; one after it is applied as a new request.
idempotency_retention_days = 30

# Audit log: sign a checkpoint of the hash chain every N events or every S seconds.
audit_checkpoint_every = 1000
audit_checkpoint_seconds = 60
# Each signed checkpoint is also appended (fsynced) to this file outside the database (empty =
# $STRONGROOM_HOME/audit/checkpoints.log); keep it on storage the database's users cannot write,
# and optionally copy it to syslog ("/dev/log" or "host:514", UDP) for a witness off this machine.
audit_witness_file = ""
audit_witness_syslog = ""

# SQLite durability: NORMAL survives process crashes (kill -9); FULL also survives power loss.
sqlite_synchronous = "NORMAL"

# Logs: JSON lines in $STRONGROOM_HOME/logs/strongroom.log (everything) and access.log (one
# line per request), each rotated at log_max_bytes with log_backup_count old files kept
# (access.log.1 is the newest). Under systemd they also go to stderr (the journal).
log_level = "info"
log_max_bytes = 10485760
log_backup_count = 5

# Keys. "local": team keys are generated here and stored wrapped by the root key.
# "pkcs11": new team keys are generated inside an HSM (non-extractable) and data keys are
# wrapped there; set the PIN with STRONGROOM_PKCS11_PIN rather than in this file.
keyring = "local"
pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so"
pkcs11_token_label = "strongroom"
# Scheduled key deletion: the shortest allowed waiting period and the default one (seconds).
# After it, the key is destroyed and data encrypted under it is unrecoverable.
key_deletion_min_waiting_seconds = 604800      # 7 days
key_deletion_default_waiting_seconds = 2592000 # 30 days
kms_worker_interval_seconds = 60               # how often rotation and deletion deadlines are checked

# Where the encrypted object bytes live. "local": a directory (empty = $STRONGROOM_HOME/blobs).
# "fsspec": any fsspec URL, e.g. "s3://my-bucket/strongroom" with s3fs installed and
#   blob_store_options = {{ endpoint_url = "https://minio.internal:9000" }}
blob_store = "local"
blob_store_path = ""
blob_store_url = ""
# Blobs no object version names (left by a crash mid-upload) are removed after this many seconds.
orphan_blob_grace_seconds = 3600

# Jobs: how many run at once, the largest scratch volume (memory-backed tmpfs) a job may ask
# for, the most instances (Dask workers) per job, where per-job secrets live while a job runs
# (must be a tmpfs; empty = /dev/shm/strongroom-<uid>), and a spot preemption simulator
# (probability per running spot job per half second; 0 = off).
job_slots = 2
job_max_scratch_mb = 8192
job_max_instance_count = 4
job_runtime_dir = ""
spot_preemption_probability = 0.0

# Model monitoring: an execution starts this many seconds after its window ends, so that the
# requests answered just before the end (an endpoint uploads its capture every 5 seconds) are read.
monitor_capture_lag_seconds = 10.0

# Detective controls raise alerts into the audit log and, when set, POST them (JSON) here.
alert_webhook_url = ""
alert_webhook_ca = ""                # CA bundle for the webhook's certificate (empty = system CAs)
# A team's DataScienceAdmin may send its monitoring alerts to its own https:// webhook too; such a
# webhook may not reach loopback, private or link-local addresses unless its host is listed here.
alert_team_webhook_allowed_hosts = []

# OpenLineage run events for jobs (START, COMPLETE, FAIL), for Marquez or DataHub: an HTTPS
# endpoint (e.g. "https://marquez.example:5000/api/v1/lineage") or a JSON-lines file; empty = off.
openlineage_url = ""
openlineage_file = ""
openlineage_namespace = "strongroom"
# Catalog and notebooks (docs/catalog.md, docs/notebooks.md).
catalog_worker_interval_seconds = 1.0   # how often provisioning and notebook state are reconciled
# Per-notebook home volumes (empty = $STRONGROOM_HOME/notebooks). Keep customer data in sr:// buckets.
notebook_volumes_path = ""
# Jupyter sockets and short-lived tokens of running notebooks (empty = a private directory on
# /dev/shm, i.e. memory; falls back to $STRONGROOM_HOME/run/nb where /dev/shm is missing).
notebook_runtime_dir = ""
notebook_ready_timeout_seconds = 180   # a notebook whose Jupyter does not answer by then is Failed
notebook_stop_grace_seconds = 10       # SIGTERM, then SIGKILL after this many seconds
presigned_url_max_seconds = 300        # longest lifetime of a single-use notebook sign-in URL
# The only package index `pip install` inside a notebook can reach (through the platform).
# Empty = none: pip fails, as nothing inside a notebook reaches the internet.
# e.g. "https://pypi-mirror.internal/simple" (a PEP 503 simple index whose file links are relative)
package_index_url = ""
"""
