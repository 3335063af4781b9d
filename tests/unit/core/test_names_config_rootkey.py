from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from strongroom.core.config import Config
from strongroom.core.errors import ConfigurationError, IntegrityError, InvalidInput
from strongroom.core.names import Srn, check_name
from strongroom.core.rootkey import RootKey, load_root_key
from strongroom.core.secrets import Secret


@pytest.mark.parametrize("name", ["risk", "a", "team-01", "x" * 63])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "-risk", "Risk", "risk_team", "x" * 64, "../etc", "a b", "rïsk", None, 3])
def test_invalid_names_name_the_field(name: object) -> None:
    with pytest.raises(InvalidInput) as err:
        check_name(name, "team")
    assert err.value.field == "team"


def test_srn_round_trip() -> None:
    srn = Srn.parse("srn:strongroom:risk:bucket/risk-data")
    assert (srn.team, srn.kind, srn.name) == ("risk", "bucket", "risk-data")
    assert str(srn) == "srn:strongroom:risk:bucket/risk-data"
    with pytest.raises(InvalidInput):
        Srn.parse("arn:aws:s3:::bucket")


def test_config_precedence_and_unknown_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text('port = 9000\nlog_level = "debug"\n')
    monkeypatch.setenv("STRONGROOM_LOG_LEVEL", "warning")
    config = Config(home=tmp_path)
    assert config.port == 9000  # from the file
    assert config.log_level == "warning"  # env beats the file
    assert Config(home=tmp_path, port=1234).port == 1234  # arguments beat both
    (tmp_path / "config.toml").write_text("prot = 9000\n")
    with pytest.raises(ValidationError, match="prot"):
        Config(home=tmp_path)


def test_config_is_frozen(tmp_path: Path) -> None:
    config = Config(home=tmp_path)
    with pytest.raises(ValidationError):
        config.port = 1  # type: ignore[misc]


def test_secret_never_prints() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret) and "hunter2" not in f"{secret}"
    assert secret.reveal() == "hunter2"


def test_root_key_wraps_with_label_binding() -> None:
    root = RootKey(os.urandom(32))
    blob = root.wrap(b"ca private key", "label-a")
    assert root.unwrap(blob, "label-a") == b"ca private key"
    with pytest.raises(IntegrityError):
        root.unwrap(blob, "label-b")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(IntegrityError):
        root.unwrap(tampered, "label-a")
    assert repr(root) == "RootKey(**********)"


def test_root_key_file_is_private_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    created = load_root_key(tmp_path, create=True)
    key_file = tmp_path / "root.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert load_root_key(tmp_path).derive("x") == created.derive("x")
    key_file.chmod(0o644)
    with pytest.raises(ConfigurationError, match="readable by others"):
        load_root_key(tmp_path)
    key_file.chmod(0o600)
    monkeypatch.setenv("STRONGROOM_ROOT_KEY", base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(ConfigurationError, match="does not match"):
        load_root_key(tmp_path)


def test_root_key_from_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRONGROOM_ROOT_PASSPHRASE", "correct horse battery staple")
    first = load_root_key(tmp_path, create=True)
    assert not (tmp_path / "root.key").exists()
    assert load_root_key(tmp_path).derive("x") == first.derive("x")
    monkeypatch.setenv("STRONGROOM_ROOT_PASSPHRASE", "wrong")
    with pytest.raises(ConfigurationError):
        load_root_key(tmp_path)


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("STRONGROOM_LOG_LEVEL", "loud", "log_level must be debug, info, warning, error or critical"),
        ("STRONGROOM_LOG_MAX_BYTES", "10", "log_max_bytes: Input should be greater than or equal to 1024"),
    ],
)
def test_a_bad_setting_is_named_by_the_cli_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, said: str
) -> None:
    from typer.testing import CliRunner

    from strongroom.cli.main import app

    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(app, ["backup", str(tmp_path / "b.srbak"), "--home", str(tmp_path)])
    assert result.exit_code == 1 and said in result.output
    assert isinstance(result.exception, SystemExit)  # reported, not raised


def test_log_level_is_case_insensitive(tmp_path: Path) -> None:
    assert Config(home=tmp_path, log_level="WARNING").log_level == "warning"
