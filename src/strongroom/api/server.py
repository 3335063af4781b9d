"""``strongroom up``: HTTPS on TCP (TLS 1.2+, no plain-HTTP listener) and HTTP on a Unix socket
for sandboxes, one process, background workers, graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import gc
import json
import logging
import os
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import uvicorn

import strongroom
from strongroom.api.accept import BalancedListener, ConnectionCounts
from strongroom.api.app import create_app
from strongroom.api.http_limits import LimitedServer, server_config
from strongroom.core import pki
from strongroom.core.config import Config
from strongroom.core.errors import ConfigurationError, StrongroomError
from strongroom.gitrepo.service import release_mounts
from strongroom.observability import logs
from strongroom.platform import Platform

log = logging.getLogger("strongroom.server")


class _Server(LimitedServer):
    """A uvicorn server whose signals are handled by ``serve`` for all listeners at once.

    ``balance``: one of ``serve_workers``' processes, whose HTTPS connections are spread over its
    siblings (``strongroom.api.accept``).
    """

    def __init__(
        self, config: uvicorn.Config, handshake_timeout: float, balance: tuple[ConnectionCounts, int] | None = None
    ) -> None:
        super().__init__(config, handshake_timeout)
        self._balance = balance

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def listen(self, sock: socket.socket) -> asyncio.Server:
        if self._balance is None:
            return await super().listen(sock)
        counts, slot = self._balance
        listener = BalancedListener(
            sock,
            self.new_protocol,
            tls=self.tls,
            handshake_timeout=self.handshake_timeout,
            open_connections=lambda: len(self.server_state.connections),
            counts=counts,
            slot=slot,
        )
        return cast(asyncio.Server, listener)  # uvicorn only closes it and waits for it


def tls_context(platform: Platform) -> ssl.SSLContext:
    files = platform.tls
    if not platform.config.tls_cert_file and pki.server_cert_needs_renewal(files):
        pki.issue_server_cert(files, platform.root, platform.config.public_hostname)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if platform.config.tls_min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    context.set_alpn_protocols(["http/1.1"])
    # No TLS 1.3 session tickets: they arrive after the handshake, while a client with a reader
    # thread (the websockets sync client) is already writing its request, and that concurrent use
    # of one TLS connection sometimes lost the WebSocket upgrade request. Our clients never
    # resume sessions, so the tickets bought nothing.
    context.num_tickets = 0
    log.info("TLS: %s", pki.load_server_certificate(context, platform.config, files, platform.root))
    return context


def _reload(platform: Platform, context: ssl.SSLContext) -> None:
    """SIGHUP: re-read the certificate (next handshakes use it) and the policies; nothing restarts."""
    try:
        # Tried on a scratch context first: a failed load can leave a context half-replaced.
        pki.load_server_certificate(
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), platform.config, platform.tls, platform.root
        )
        log.info("reload: TLS %s", pki.load_server_certificate(context, platform.config, platform.tls, platform.root))
    except (OSError, ValueError, ConfigurationError) as exc:
        log.error("reload: keeping the current certificate: %s", exc)
    platform.reload()
    log.info("reload: policies and authentication caches re-read from the database")


def _tcp_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it a response written as two TLS records
    # waits for the client's delayed ACK (~40 ms per request).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {exc.strerror}; is another `strongroom up` running? "
            "Choose another port with --port or STRONGROOM_PORT",
            field="port",
        ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _unix_socket(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    sock.listen(512)
    return sock


def _dump_state() -> None:
    """Log every thread's stack and where every task waits (``kill -USR1 <pid>``: what is it doing?)."""
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    for task in asyncio.all_tasks():
        chain: list[str] = []
        awaited: Any = task.get_coro()
        while awaited is not None and len(chain) < 64:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is not None:
                chain.append(f"{frame.f_code.co_name} ({Path(frame.f_code.co_filename).name}:{frame.f_lineno})")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        log.warning("task %s waits in %s", task.get_name(), " -> ".join(chain) or repr(task))


def serve(
    platform: Platform,
    *,
    ready_file: Path | None = None,
    listeners: tuple[socket.socket, socket.socket] | None = None,
    slot: int | None = None,
    counts: ConnectionCounts | None = None,
) -> None:
    """Run until SIGTERM/SIGINT; then finish in-flight requests, stop workers, sign a checkpoint.

    ``listeners``, ``slot`` and ``counts``: one API process of ``serve_workers`` (the sockets its
    master bound; slot 0 runs the background workers; the open connections of every process).
    Otherwise the one process of the platform.
    """
    config = platform.config
    app = create_app(platform)
    context = tls_context(platform)
    if listeners is None:
        try:
            tcp = _tcp_socket(config.host, config.port)
        except ConfigurationError:
            platform.close()
            raise
        socket_path = config.effective_socket_path
        uds = _unix_socket(socket_path)
    else:
        tcp, uds = listeners
        socket_path = Path(uds.getsockname())
    port = tcp.getsockname()[1]
    app.state.public_url = config.effective_public_url(port)
    owner = slot in (None, 0)

    common: dict[str, Any] = {
        "lifespan": "off",
        "log_level": config.log_level,
        "access_log": False,
        "server_header": False,
        "timeout_keep_alive": 30,
        "timeout_graceful_shutdown": 20,
    }
    # Every listener gets the same HTTP limits (header size and count, header and body deadlines).
    deadline = config.http_header_timeout_seconds
    https = _Server(
        server_config(app, config, ssl_context_factory=lambda _config, _default: context, **common),
        deadline,
        balance=(counts, slot) if counts is not None and slot is not None else None,
    )
    local = _Server(server_config(app, config, **common), deadline)
    runner = platform.run_background_here(shared=slot is not None) if owner else None
    if slot is not None:
        platform.git.shared = True  # the master released stale mounts before the first fork
        platform.db.shared = True  # the other API processes write to the same database
    elif runner is not None:
        platform.git.release_stale_mounts()  # one `up` per home: mounts from a killed process are stale
    if runner is not None:
        runner.start()
    else:
        platform.run_background_elsewhere(_owner_pid(config))
    platform.changes.start()

    info = {
        "pid": os.getpid(),
        "url": config.model_copy(update={"public_url": "", "public_hostname": ""}).effective_public_url(port),
        "port": port,
        "host": config.host,
        "socket": str(socket_path),
        "database": "sqlite" if platform.db.is_sqlite else "postgresql",
        "workers": runner.names if runner is not None else [],
        "version": strongroom.__version__,
        "started_at": time.time(),
        "sandbox_limits": platform.sandboxes.cgroups.describe(),
    }
    if not platform.sandboxes.cgroups.available:
        log.warning("%s", info["sandbox_limits"])
    info_path = config.run_dir / ("server.json" if slot is None else f"api-{slot}.json")
    if slot == 0:
        (config.run_dir / "owner.pid").write_text(str(os.getpid()))

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def shutdown() -> None:
            https.should_exit = True
            local.should_exit = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, shutdown)
        loop.add_signal_handler(signal.SIGUSR1, _dump_state)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, _reload, platform, context))
        tasks = [asyncio.create_task(https.serve(sockets=[tcp])), asyncio.create_task(local.serve(sockets=[uds]))]
        while not (https.started and local.started):
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.01)
        settle_heap()
        info_path.write_text(json.dumps(info, indent=2))
        if ready_file is not None:
            ready_file.write_text(json.dumps(info))
        log.info("strongroom API on %s and %s; sandboxes: %s", info["url"], socket_path, info["sandbox_limits"])
        await asyncio.gather(*tasks)

    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as loop_runner:
            loop_runner.run(main())
    finally:
        if runner is not None:
            runner.stop()
        platform.close()
        with contextlib.suppress(FileNotFoundError):
            info_path.unlink()
        if listeners is None:
            with contextlib.suppress(FileNotFoundError):
                socket_path.unlink()


def settle_heap() -> None:
    """Move what start-up built out of the garbage collector's sight (``gc.freeze``).

    Start-up leaves about 300,000 objects that live as long as the process (the app, the ORM's
    mappers, the policies, numpy, xgboost); a full collection walked them all, about 150 ms on
    this 2-core machine, and every request in flight waited for it: the p99 at 16 connections.
    Frozen, they are never scanned again; objects made later are collected as before.
    """
    gc.collect()
    gc.freeze()


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (``uvicorn[standard]`` brings it): its TLS and
    its loop are compiled, about a sixth less CPU per invocation in the API process than
    asyncio's own. None: asyncio's default loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it on Linux
        return None
    return uvloop.new_event_loop


def _owner_pid(config: Config) -> Callable[[], int]:
    """Where an API process that runs no background workers learns which process runs them."""
    path = config.run_dir / "owner.pid"

    def read() -> int:
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            return 0

    return read


# -- several API processes --------------------------------------------------------------------

_RESTART_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass
class _Child:
    slot: int
    pid: int
    started: float
    crashes: int = 0


def serve_workers(config: Config, workers: int, *, build: Callable[[Config], Platform] = Platform) -> None:
    """``strongroom up --workers N``: a master binds the HTTPS port and the sandbox socket once,
    then forks N API processes that accept on them; slot 0 also runs the background workers.

    The master builds no platform of its own after the fork (no threads, no connections): it
    forwards SIGHUP, SIGTERM and SIGINT, restarts a process that dies, and writes ``server.json``
    once every process serves. ``build``: how each process builds its platform (the benchmark's
    unguarded floor builds one without the guard).
    """
    if workers < 1:
        raise ConfigurationError("--workers must be at least 1", field="workers")
    # Once, before any fork: migrations, a renewed certificate, a checked home.
    first = Platform(config)
    try:
        tls_context(first)
        first.git.release_stale_mounts()
    finally:
        first.close()
    tcp = _tcp_socket(config.host, config.port)
    socket_path = config.effective_socket_path
    uds = _unix_socket(socket_path)
    run = config.run_dir
    info_path = run / "server.json"
    for stale in [*run.glob("api-*.json"), run / "owner.pid"]:
        stale.unlink(missing_ok=True)
    if threading.active_count() > 1:
        log.warning("forking with %d threads alive", threading.active_count())

    children: dict[int, _Child] = {}
    stopping: list[int] = []
    counts = ConnectionCounts(workers)

    def spawn(slot: int, crashes: int = 0) -> None:
        pid = os.fork()
        if pid == 0:  # the child: an API process
            code = 0
            try:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
                    signal.signal(sig, signal.SIG_DFL)
                logs.configure(config, process=str(slot))
                serve(build(config), listeners=(tcp, uds), slot=slot, counts=counts)
            except BaseException:
                log.exception("API process %d failed", slot)
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = _Child(slot, pid, time.monotonic(), crashes)

    def forward(sig: int, _frame: object) -> None:
        if sig in (signal.SIGTERM, signal.SIGINT):
            stopping.append(sig)
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(sig, forward)
    for slot in range(workers):
        spawn(slot)
    served = False  # every process has served once
    current = False  # server.json names the processes that run now
    try:
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                if not current and not stopping:
                    current = _write_master_info(run, info_path, children)
                    served = served or current
                time.sleep(0.05)
                continue
            child = children.pop(pid, None)
            if child is None or stopping:
                continue
            counts.leave(child.slot)  # its connections died with it
            if not served:
                log.error("API process %d exited (status %d) while starting; stopping", child.slot, status)
                forward(signal.SIGTERM, None)
                raise ConfigurationError(f"an API process could not start (status {status}); see the log")
            crashes = child.crashes + 1 if time.monotonic() - child.started < 10 else 0
            delay = _RESTART_BACKOFF[min(crashes, len(_RESTART_BACKOFF) - 1)]
            log.warning(
                "API process %d (pid %d) died (%s); restarting it in %.1fs",
                child.slot,
                pid,
                _describe_status(status),
                delay,
            )
            time.sleep(delay)
            if not stopping:
                spawn(child.slot, crashes)
                current = False
    finally:
        if children and not stopping:  # the master itself failed: stop the processes too
            forward(signal.SIGTERM, None)
        deadline = time.monotonic() + 40
        while children and time.monotonic() < deadline:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                children.pop(pid, None)
            else:
                time.sleep(0.05)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            release_mounts(config.home / "git")  # the processes shared them and left them mounted
        except StrongroomError as exc:
            log.error("git: %s", exc)
        for path in (info_path, socket_path, run / "owner.pid"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        tcp.close()
        uds.close()


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def _write_master_info(run: Path, info_path: Path, children: dict[int, _Child]) -> bool:
    """``server.json`` for the master, once every API process has written its own file."""
    infos: dict[int, dict[str, Any]] = {}
    for child in children.values():
        try:
            info = json.loads((run / f"api-{child.slot}.json").read_text())
        except (OSError, ValueError):
            return False
        if info.get("pid") != child.pid:
            return False
        infos[child.slot] = info
    merged = dict(infos[min(infos)])
    merged["pid"] = os.getpid()
    merged["processes"] = sorted(
        ({"slot": c.slot, "pid": c.pid, "background": c.slot == 0} for c in children.values()),
        key=lambda p: int(str(p["slot"])),
    )
    info_path.write_text(json.dumps(merged, indent=2))
    log.info("strongroom API on %s from %d processes", merged["url"], len(infos))
    return True
