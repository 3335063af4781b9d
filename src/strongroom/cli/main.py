"""``strongroom``: init, up, status, demo, and one command group per domain."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import ssl
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

import strongroom
from strongroom.cli import (
    audit,
    catalog,
    experiments,
    git,
    host,
    identity,
    jobs,
    lineage,
    monitor,
    policy,
    serving,
    storage,
)
from strongroom.cli import model_registry as _model_registry  # noqa: F401  (adds `models register|packages|approve|reject`)
from strongroom.cli.common import HomeOpt, JsonOpt, StrongroomGroup, config_for
from strongroom.cli.output import print_json, say, show
from strongroom.core.config import Config
from strongroom.core.errors import StrongroomError
from strongroom.sdk.session import Session

app = typer.Typer(
    cls=StrongroomGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Strongroom: a secure ML workbench you run yourself.",
)


def _print_version(value: bool) -> None:
    if value:
        print(f"strongroom {strongroom.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Strongroom: a secure ML workbench you run yourself."""


app.command("explain")(jobs.explain)
app.command("reproduce")(jobs.reproduce)
app.command("invoke")(serving.invoke)

for sub_app, group in (
    (identity.users_app, "users"),
    (identity.teams_app, "teams"),
    (identity.tokens_app, "tokens"),
    (identity.roles_app, "roles"),
    (policy.policy_app, "policy"),
    (audit.audit_app, "audit"),
    (git.repos_app, "repos"),
    (jobs.jobs_app, "jobs"),
    (jobs.runtimes_app, "runtimes"),
    (storage.keys_app, "keys"),
    (storage.buckets_app, "buckets"),
    (experiments.experiments_app, "experiments"),
    (lineage.lineage_app, "lineage"),
    (catalog.catalog_app, "catalog"),
    (catalog.notebooks_app, "notebooks"),
    (host.admin_app, "admin"),
    (serving.models_app, "models"),
    (serving.endpoints_app, "endpoints"),
    (monitor.app, "monitor"),
):
    app.add_typer(sub_app, name=group)
for command in (storage.cp, storage.ls, storage.rm, host.backup, host.restore):
    app.command()(command)
app.command("install-service")(host.install_service)


# -- platform lifecycle -----------------------------------------------------------------------


@app.command()
def init(
    home: HomeOpt = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL; default embedded SQLite.")] = None,
    port: Annotated[int | None, typer.Option(help="HTTPS port (0 = any free port).")] = None,
    admin: Annotated[str, typer.Option(help="Name of the first PlatformAdmin.")] = "admin",
    export: Annotated[
        bool, typer.Option("--export", help="Print only `export STRONGROOM_TOKEN=...` (for `eval`).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a platform home: config, root key, CA, database, and the first admin's token."""
    from strongroom.platform import initialize

    result = initialize(config_for(home, database_url=database_url, port=port), admin=admin)
    if as_json:
        print_json({"home": str(result.home), "admin": result.admin, "token": result.token.secret})
        return
    if export:
        print(f"export STRONGROOM_TOKEN={result.token.secret}")
        return
    say(("Initialised", "green"), f" {result.home}")
    say(f"Database: {result.database_url.split('@')[-1]}")
    say("PlatformAdmin ", (result.admin, "bold"), "; token (shown once, only its hash is stored):")
    print(f"\n    export STRONGROOM_TOKEN={result.token.secret}\n")
    say("Start the platform with: strongroom up")


@app.command()
def up(
    home: HomeOpt = None,
    port: Annotated[int | None, typer.Option(help="HTTPS port (0 = any free port).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="API processes sharing the port (more than 1: a master forks them and restarts any that dies).",
        ),
    ] = 1,
) -> None:
    """Serve the API over HTTPS and on the sandbox socket until SIGTERM."""
    config = config_for(home, port=port, host=host)
    if workers > 1:
        _share_metrics(config.run_dir / "metrics")  # before anything imports prometheus_client
    from strongroom.api.server import serve, serve_workers
    from strongroom.observability import logs
    from strongroom.platform import Platform, check_home

    check_home(config.home)  # before the logs: a mistyped home must not become a folder `init` refuses
    with logs.configured(config):
        if workers > 1:
            serve_workers(config, workers)
        else:
            serve(Platform(config))


def _share_metrics(folder: Path) -> None:
    """Let the API processes of ``up --workers N`` count into one set of metrics (files in ``folder``),
    so that a scrape, whichever process answers it, sees every process's requests."""
    if "prometheus_client" in sys.modules:  # too late to switch (an in-process caller): per process
        return
    shutil.rmtree(folder, ignore_errors=True)  # a previous run's counts are not this run's
    folder.mkdir(mode=0o700, parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


@app.command()
def status(
    home: HomeOpt = None,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for a platform that is starting (e.g. just after `up &`).")
    ] = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Say what runs where: the HTTPS address, the sandbox socket, workers, the audit head."""
    from strongroom.platform import read_server_info

    config = config_for(home)
    if not (config.home / "root.check").exists():
        say(f"no Strongroom home at {config.home}; create one with `strongroom init`", err=True)
        raise typer.Exit(1)
    deadline = time.monotonic() + wait
    while (info := read_server_info(config)) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if info is None:
        say(f"not running: no server in {config.home}; start it with `strongroom up`", err=True)
        raise typer.Exit(1)
    if isinstance(info.get("started_at"), int | float):
        info["started_at"] = dt.datetime.fromtimestamp(float(str(info["started_at"])), dt.UTC).isoformat()
    alive = _pid_alive(int(str(info.get("pid", 0))))
    reachable = _tls_reachable(config, str(info.get("host", "127.0.0.1")), int(str(info.get("port", 0))))
    report: dict[str, Any] = {**info, "process": "running" if alive else "gone", "https": reachable}
    if os.environ.get("STRONGROOM_TOKEN") and reachable == "ok":
        try:
            with Session(home=config.home) as s:
                report["audit_head_seq"] = s.status()["audit_head_seq"]
        except StrongroomError as exc:
            report["api"] = exc.detail
    show(report, as_json)
    if not alive or reachable != "ok":
        raise typer.Exit(1)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, ValueError):
        return False
    return pid > 0


def _tls_reachable(config: Config, host: str, port: int) -> str:
    context = ssl.create_default_context(cafile=os.environ.get("STRONGROOM_CA") or str(config.tls_dir / "ca.pem"))
    try:
        with (
            socket.create_connection((host if host not in ("0.0.0.0", "::") else "127.0.0.1", port), 3) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            return "ok" if tls.version() else "no TLS"
    except OSError as exc:
        return f"unreachable ({exc})"


@app.command()
def demo(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="A new or empty directory for the demo's platform "
            "(default $STRONGROOM_HOME, else a new temporary directory).",
        ),
    ] = None,
    keep_running: Annotated[bool, typer.Option(help="Leave the platform up and print how to reach it.")] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Your copy of the workshop's data: the UCI .xls, a CSV export with a header row, the "
            "workshop's headerless train_data.csv (with --test), or a folder holding train_data.csv and test_data.csv."
        ),
    ] = None,
    test: Annotated[
        Path | None, typer.Option(help="The workshop's headerless test_data.csv, with --data train_data.csv.")
    ] = None,
    report_dir: Annotated[
        Path | None, typer.Option(help="Where to save the report (default ./strongroom-demo-report).")
    ] = None,
) -> None:
    """Run the workshop end to end on a fresh platform: notebooks executed in sandboxed kernels."""
    from strongroom.demo.run import run_demo

    if data is not None and not data.exists():
        raise typer.BadParameter(f"{data} does not exist", param_hint="--data")
    if test is not None and data is None:
        raise typer.BadParameter("--test needs --data (the training file)", param_hint="--test")
    code = run_demo(
        home=home.expanduser() if home else None, keep_running=keep_running, data=data, report_dir=report_dir, test=test
    )
    raise typer.Exit(code)


def main() -> None:
    app()
