"""Options and helpers shared by every command group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from strongroom.sdk.session import Session

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="Platform home (default $STRONGROOM_HOME or ~/.strongroom).")
]


def session() -> Session:
    """The caller's SDK session (STRONGROOM_TOKEN, and the platform found as the SDK documents)."""
    return Session()
