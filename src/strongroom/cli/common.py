"""Options and helpers shared by every command group."""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from strongroom.cli.output import err_console
from strongroom.core.config import Config
from strongroom.core.errors import StrongroomError
from strongroom.sdk.session import Session

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="Platform home (default $STRONGROOM_HOME or ~/.strongroom).")
]


def config_for(home: Path | None = None, **overrides: Any) -> Config:
    """The platform's ``Config``, with ``--home`` and the options the user gave (``None`` = not given)."""
    values = {k: v for k, v in overrides.items() if v is not None}
    if home is not None:
        values["home"] = home.expanduser()
    return Config(**values)


def session() -> Session:
    """The caller's SDK session (STRONGROOM_TOKEN, and the platform found as the SDK documents).

    Closed when the command finishes.
    """
    opened = Session()
    registry = _open_sessions.get()
    if registry is not None:
        registry.append(opened)
    return opened


_open_sessions: ContextVar[list[Session] | None] = ContextVar("strongroom_cli_sessions", default=None)


class StrongroomGroup(TyperGroup):
    """Turns platform errors into a one-line message and exit code 1, for every command."""

    def invoke(self, ctx: Any) -> Any:
        opened: list[Session] = []
        token = _open_sessions.set(opened)
        try:
            return super().invoke(ctx)
        except StrongroomError as exc:
            where = f" (field: {exc.field})" if exc.field else ""
            err_console.print(f"[red]error:[/red] {exc.detail}{where}", soft_wrap=True)
            raise typer.Exit(1) from None
        except ModuleNotFoundError as exc:
            # `pip install strongroom` is the client only; running the platform needs the rest.
            err_console.print(
                f"[red]error:[/red] this command runs the platform and needs {exc.name!r}, which the client-only "
                "install does not have; install the server parts with: pip install 'strongroom\\[server]'",
                soft_wrap=True,
            )
            raise typer.Exit(1) from None
        finally:
            _open_sessions.reset(token)
            for session in opened:
                session.close()
