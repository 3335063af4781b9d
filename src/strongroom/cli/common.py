"""Options and helpers shared by every command group."""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from strongroom.cli.output import print_json, say
from strongroom.core.config import Config
from strongroom.core.errors import ConfigurationError, InvalidInput, StrongroomError
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
    try:
        return Config(**values)
    except ValidationError as exc:  # a bad value in config.toml or STRONGROOM_*: say which, not a traceback
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        first = str(exc.errors()[0]["loc"][0]) if exc.errors() and exc.errors()[0]["loc"] else None
        raise ConfigurationError(
            f"invalid configuration (config.toml or STRONGROOM_* variables): {problems}", field=first
        ) from exc


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


_WANTS_JSON = "strongroom.json"


class StrongroomGroup(TyperGroup):
    """Turns platform errors into a one-line message and exit code 1, for every command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[_WANTS_JSON] = "--json" in args  # a script asked for JSON: errors come as JSON too
        return list(super().parse_args(ctx, args))

    def invoke(self, ctx: Any) -> Any:
        opened: list[Session] = []
        token = _open_sessions.set(opened)
        try:
            return super().invoke(ctx)
        except (StrongroomError, OSError) as exc:
            # OSError: a local file the user named is missing, a folder or unreadable.
            error = exc if isinstance(exc, StrongroomError) else InvalidInput(f"{exc.strerror}: {exc.filename}")
            if ctx.meta.get(_WANTS_JSON):
                print_json(error.to_problem())
            else:
                where = f" (field: {error.field})" if error.field else ""
                say(("error:", "red"), f" {error.detail}{where}", err=True)
            raise typer.Exit(1) from None
        except ModuleNotFoundError as exc:
            # `pip install strongroom` is the client only; running the platform needs the rest.
            say(
                ("error:", "red"),
                f" this command runs the platform and needs {exc.name!r}, which the client-only install does not "
                "have; install the server parts with: pip install 'strongroom[server]'",
                err=True,
            )
            raise typer.Exit(1) from None
        finally:
            _open_sessions.reset(token)
            for session in opened:
                session.close()
