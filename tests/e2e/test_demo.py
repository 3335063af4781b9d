"""`strongroom demo` runs end to end on a fresh home and verifies the audit chain."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from strongroom.cli.main import app


def test_demo_completes(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    result = CliRunner().invoke(app, ["demo", "--home", str(home)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Audit chain: OK" in result.output
    assert "Demo complete." in result.output
    assert not (home / "run" / "server.json").exists()  # the platform was stopped
