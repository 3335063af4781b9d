"""One frozen ``Config``, read from ``$STRONGROOM_HOME/config.toml`` and ``STRONGROOM_*``.

Precedence: explicit arguments > environment > config.toml > defaults. Defaults are the
embedded, single-machine choices (SQLite, local keyring, local blob store).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
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
    socket_path: str = ""
    tls_min_version: str = "1.2"
    session_ttl_seconds: int = Field(default=3600, ge=60, le=86400)
    execution_ttl_seconds: int = Field(default=900, ge=60, le=86400)
    default_token_ttl_days: int = Field(default=90, ge=1, le=3650)
    max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    request_timeout_seconds: float = Field(default=60.0, gt=0)
    audit_checkpoint_every: int = Field(default=1000, ge=1)
    audit_checkpoint_seconds: float = Field(default=60.0, gt=0)
    sqlite_synchronous: str = "NORMAL"
    log_level: str = "info"
    openlineage_url: str = ""
    openlineage_file: str = ""
    openlineage_namespace: str = "strongroom"

    @field_validator("tls_min_version")
    @classmethod
    def _tls(cls, value: str) -> str:
        if value not in ("1.2", "1.3"):
            raise ValueError("tls_min_version must be '1.2' or '1.3'")
        return value

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
    def tls_dir(self) -> Path:
        return self.home / "tls"


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
# Minimum TLS version: "1.2" or "1.3".
tls_min_version = "1.2"

# Unix domain socket for sandboxes (empty = $STRONGROOM_HOME/run/api.sock).
socket_path = ""

# Lifetimes.
session_ttl_seconds = 3600       # assume-role session tokens
execution_ttl_seconds = 900      # execution-role tokens of notebooks and jobs (auto-refreshed)
default_token_ttl_days = 90      # API tokens

# Limits.
max_request_bytes = 16777216     # larger bodies are refused with 413 (streaming uploads excepted)
request_timeout_seconds = 60

# Audit log: sign a checkpoint of the hash chain every N events or every S seconds.
audit_checkpoint_every = 1000
audit_checkpoint_seconds = 60

# SQLite durability: NORMAL survives process crashes (kill -9); FULL also survives power loss.
sqlite_synchronous = "NORMAL"

log_level = "info"

# OpenLineage run events for jobs (START, COMPLETE, FAIL), for Marquez or DataHub: an HTTPS
# endpoint (e.g. "https://marquez.example:5000/api/v1/lineage") or a JSON-lines file; empty = off.
openlineage_url = ""
openlineage_file = ""
openlineage_namespace = "strongroom"
"""
