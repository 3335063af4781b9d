"""Host side of the data plane: each variant's worker processes, each in its own sandbox.

Workers are separate processes (so invocations scale with cores); each listens on a Unix socket
in a runtime directory only it and the platform see. The platform reaches a socket only through
an ``O_PATH|O_NOFOLLOW`` descriptor it checked is a socket, so a worker that swaps the file for a
symlink cannot point the proxy elsewhere.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import shutil
import socket
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from strongroom.core.errors import Unavailable
from strongroom.sandbox import (
    Limits,
    Mount,
    OutputLine,
    PythonEnvironment,
    SandboxProcess,
    SandboxRunner,
    SandboxSpec,
    discover,
)
from strongroom.sandbox.models import GiB, MiB
from strongroom.serving.channel import Channel
from strongroom.serving.inside import wire

INSIDE_SOCK = "/run/strongroom/ep-sock"
INVOCATION_TIMEOUT = 30.0


@dataclass
class WorkerProcess:
    runtime_dir: Path
    process: SandboxProcess
    socket_fd: int | None = None
    channel: Channel | None = None  # set once the model is loaded: the worker serves
    tail: list[str] = field(default_factory=list)

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
        if self.socket_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.socket_fd)


@dataclass
class Variant:
    name: str
    weight: float
    model: bytes
    count: int
    runtime: str = "xgboost"  # or "script": the user's inference.py in the archive
    workers: list[WorkerProcess] = field(default_factory=list)
    _next: itertools.count[int] = field(default_factory=itertools.count)

    def pick(self) -> list[WorkerProcess]:
        """The workers, starting with the next in round-robin order (the rest are fallbacks)."""
        ready = [w for w in self.workers if w.channel is not None]
        if not ready:
            return []
        start = next(self._next) % len(ready)
        return ready[start:] + ready[:start]


@dataclass
class LiveEndpoint:
    endpoint_id: str
    team: str
    name: str
    variants: list[Variant]
    generation: int = 0  # 0 at start, one more per UpdateEndpoint (its workers' runtime directories)
    inflight: int = 0  # requests routed here and not yet answered (under the pool's lock)

    def choose(self) -> Variant:
        weights = [max(v.weight, 0.0) for v in self.variants]
        if sum(weights) <= 0:
            return self.variants[0]
        return random.choices(self.variants, weights)[0]


class WorkerPool:
    """Starts, watches and stops endpoint workers. Only the serving worker thread starts sandboxes."""

    def __init__(
        self,
        runner: SandboxRunner,
        runtime_root: Path,
        *,
        python: PythonEnvironment | None = None,
        ready_timeout: float = 60.0,
    ) -> None:
        self.runner = runner
        self.runtime_root = runtime_root
        self._python = python
        self.ready_timeout = ready_timeout
        self._live: dict[str, LiveEndpoint] = {}
        self._by_name: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    @property
    def python(self) -> PythonEnvironment:
        if self._python is None:
            self._python = discover()
        return self._python

    def route(self, team: str, name: str) -> LiveEndpoint | None:
        endpoint_id = self._by_name.get((team, name))
        return self._live.get(endpoint_id) if endpoint_id else None

    def acquire(self, team: str, name: str) -> LiveEndpoint | None:
        """Route a request and count it in flight until :meth:`release` (an update drains on it)."""
        with self._lock:
            live = self.route(team, name)
            if live is not None:
                live.inflight += 1
            return live

    def release(self, live: LiveEndpoint) -> None:
        with self._lock:
            live.inflight -= 1

    def live_endpoints(self) -> dict[str, LiveEndpoint]:
        return dict(self._live)

    def is_live(self, endpoint_id: str) -> bool:
        return endpoint_id in self._live

    def start(self, endpoint_id: str, team: str, name: str, variants: list[Variant]) -> None:
        """Start every worker of every variant and load its model; raise ``Unavailable`` with the reason."""
        live = LiveEndpoint(endpoint_id, team, name, variants)
        self._start_variants(live)
        with self._lock:
            self._live[endpoint_id] = live
            self._by_name[(team, name)] = endpoint_id

    def _start_variants(self, live: LiveEndpoint) -> None:
        try:
            for variant in live.variants:
                for index in range(variant.count):
                    variant.workers.append(self._start_worker(live, variant, index))
        except BaseException:
            self._stop_live(live)
            raise

    def replace(
        self,
        endpoint_id: str,
        variants: list[Variant],
        *,
        on_switch: Callable[[], None] = lambda: None,
        drain_seconds: float = 60.0,
    ) -> None:
        """Blue-green: start ``variants``' workers and load their models while the old ones serve;
        only when every new worker is ready, route new requests to them, let the old workers finish
        the requests they hold (up to ``drain_seconds``) and stop them. If a new worker fails, the
        new ones are stopped and ``Unavailable`` is raised: the old ones never stopped serving."""
        old = self._live[endpoint_id]
        live = LiveEndpoint(endpoint_id, old.team, old.name, variants, generation=old.generation + 1)
        self._start_variants(live)
        with self._lock:
            self._live[endpoint_id] = live
            on_switch()
        deadline = time.monotonic() + drain_seconds
        while old.inflight > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        self._stop_live(old)

    def _start_worker(self, live: LiveEndpoint, variant: Variant, index: int) -> WorkerProcess:
        generation = f"g{live.generation}-" if live.generation else ""
        runtime = self.runtime_root / live.endpoint_id / f"{generation}{variant.name}-{index}"
        shutil.rmtree(runtime, ignore_errors=True)
        for directory in (self.runtime_root, runtime.parent, runtime):  # sockets: the platform's eyes only
            directory.mkdir(mode=0o700, exist_ok=True)
        python = self.python
        spec = SandboxSpec(
            command=(python.executable, "-m", "strongroom.serving.inside.worker", "--socket", f"{INSIDE_SOCK}/w.sock"),
            python=python,
            hostname="endpoint",
            mounts=(Mount(str(runtime), INSIDE_SOCK, writable=True),),
            scratch_size_bytes=max(64 * MiB, 3 * len(variant.model)),
            tmp_size_bytes=64 * MiB,
            limits=Limits(memory_bytes=4 * GiB, max_runtime_seconds=None, stop_grace_seconds=5.0),
        )
        tail: list[str] = []

        def keep(line: OutputLine) -> None:
            if len(tail) < 50:
                tail.append(line.text)

        worker = WorkerProcess(runtime, self.runner.start(spec, on_output=keep), tail=tail)
        deadline = time.monotonic() + self.ready_timeout
        while worker.socket_fd is None:
            if not worker.process.running():
                raise Unavailable(f"variant {variant.name}: the worker exited at start: {' | '.join(worker.tail[-5:])}")
            if time.monotonic() > deadline:
                worker.process.stop("not ready in time")
                raise Unavailable(f"variant {variant.name}: the worker did not start within {self.ready_timeout:.0f}s")
            worker.socket_fd = _open_socket(runtime / "w.sock")
            if worker.socket_fd is None:
                time.sleep(0.05)
        path = f"/proc/self/fd/{worker.socket_fd}"
        try:
            # Loading imports XGBoost and parses the model: on a busy machine that takes longer than
            # an invocation may, so it has the start's deadline rather than the request timeout.
            status, _, answer = _load_model(path, variant.runtime, variant.model, self.ready_timeout)
        except (OSError, wire.FrameError) as exc:
            worker.process.stop("model load failed")
            raise Unavailable(f"variant {variant.name}: the worker could not take the model: {exc}") from exc
        if status != 200:
            worker.process.stop("model load failed")
            detail = json.loads(answer).get("detail", "") if answer.startswith(b"{") else ""
            raise Unavailable(f"variant {variant.name}: {detail or repr(answer[:500])}")
        worker.channel = Channel(path, timeout=INVOCATION_TIMEOUT)
        return worker

    def supervise(self) -> list[str]:
        """Restart dead workers (a crash or ``kill -9``); what happened, for the log."""
        events: list[str] = []
        for live in list(self._live.values()):
            for variant in live.variants:
                for index, worker in enumerate(list(variant.workers)):
                    if worker.process.running():
                        continue
                    channel, worker.channel = worker.channel, None  # routed to no more
                    if channel is not None:
                        channel.close()
                    worker.close()
                    try:
                        variant.workers[index] = self._start_worker(live, variant, index)
                        events.append(f"{live.team}/{live.name}/{variant.name}: worker {index} restarted")
                    except Unavailable as exc:
                        events.append(f"{live.team}/{live.name}/{variant.name}: worker {index} down: {exc.detail}")
        return events

    def stop(self, endpoint_id: str) -> None:
        with self._lock:
            live = self._live.pop(endpoint_id, None)
            if live is not None:
                self._by_name.pop((live.team, live.name), None)
        if live is not None:
            self._stop_live(live)
            shutil.rmtree(self.runtime_root / live.endpoint_id, ignore_errors=True)

    def _stop_live(self, live: LiveEndpoint) -> None:
        for variant in live.variants:
            for worker in variant.workers:
                worker.process.stop("endpoint stopped")
            for worker in variant.workers:
                with contextlib.suppress(Exception):
                    worker.process.wait(10)
                worker.close()
                shutil.rmtree(worker.runtime_dir, ignore_errors=True)

    def stop_all(self) -> None:
        for endpoint_id in list(self._live):
            self.stop(endpoint_id)


def _load_model(path: str, runtime: str, archive: bytes, timeout: float) -> tuple[int, bytes, bytes]:
    """Hand the decrypted archive to a starting worker (a blocking call of the serving worker thread)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(wire.pack(0, json.dumps({"op": "load", "runtime": runtime}).encode(), archive))
        with sock.makefile("rb") as stream:
            frame = wire.read_frame(stream)
    if frame is None:
        raise wire.FrameError("the worker closed the connection without an answer")
    return frame


def _open_socket(path: Path) -> int | None:
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW)
    except OSError:
        return None
    if not stat.S_ISSOCK(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd
