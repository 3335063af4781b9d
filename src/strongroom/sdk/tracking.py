"""The experiments client hung on ``Session`` and its batch writer.

Three durability modes, chosen per write (a Tracker's ``durability=``):

- ``"buffered"`` (the default): metrics, parameters, artifacts and status changes are queued in
  memory and sent in batches (one request, one guard call per batch) by a background thread
  when ``max_points`` metric points are waiting or every ``interval`` seconds. A Tracker's
  ``with`` exit, ``flush()``, ``Session.close()``, interpreter exit (``atexit``) and SIGTERM
  send what is queued. A process killed outright (``kill -9``, OOM) loses what was logged in
  the last ``interval`` seconds plus the batch in flight, never more than ``max_queue`` points.
- ``"durable"``: the call returns once the server has committed it. Concurrent callers share
  round trips (group commit): whoever finds the sender free sends everything queued, so N
  threads waiting cost one request, not N.
- ``"journaled"``: the call returns once the write is appended to a local journal file
  (``strongroom.sdk.tracking_journal``; no fsync); it is sent in batches as buffered writes are.
  A ``kill -9`` loses nothing that returned: the next journaled writer of the same platform,
  team and user (or ``strongroom experiments replay-journal``) sends what was not acknowledged.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
import time
import uuid
import weakref
from typing import TYPE_CHECKING, Any, Literal

from strongroom.core.errors import InvalidInput, StrongroomError
from strongroom.experiments.models import (
    BatchResult,
    Experiment,
    MetricSeries,
    Trial,
    TrialComponent,
)
from strongroom.lineage import git
from strongroom.lineage.models import GitCommit
from strongroom.sdk import tracking_batch
from strongroom.sdk.tracking_batch import Pending
from strongroom.sdk.tracking_journal import Journal, ReplaySummary, journal_folder, platform_of, replay_journals

if TYPE_CHECKING:
    import pandas as pd

    from strongroom.sdk.session import Session

ARROW = "application/vnd.apache.arrow.stream"
Durability = Literal["buffered", "durable", "journaled"]
DURABILITIES: tuple[Durability, ...] = ("buffered", "durable", "journaled")
SIGTERM_FLUSH_SECONDS = 10.0
_log = logging.getLogger("strongroom.tracking")


def durability_from(value: str | None) -> Durability:
    """``value``, else ``$STRONGROOM_TRACKING_DURABILITY``, else ``"buffered"``; checked."""
    chosen = value or os.environ.get("STRONGROOM_TRACKING_DURABILITY") or "buffered"
    if chosen not in DURABILITIES:
        raise InvalidInput(f"durability must be one of {', '.join(DURABILITIES)}, not {chosen!r}", field="durability")
    return chosen


class BatchWriter:
    """Queues trial-component writes and sends them in batches from a background thread."""

    def __init__(
        self,
        session: Session,
        team: str,
        *,
        max_points: int = 5000,
        interval: float = 1.0,
        max_queue: int = 100_000,
        journal_linger: float = 0.05,
    ) -> None:
        self._session = session
        self.team = team
        self.max_points = max_points
        self.interval = interval
        self.max_queue = max_queue
        # A journaled write is sent at most this long after it was written: soon readable on the
        # platform, while the writes of a busy caller still travel together in one batch.
        self.journal_linger = journal_linger
        self._send_by: float | None = None  # when the oldest unsent journaled write must go
        mutex = threading.RLock()
        self._lock = threading.Condition(mutex)  # the queue; the background sender waits on it
        self._progress = threading.Condition(mutex)  # durable callers wait on it for their commit
        self._sending = False  # one thread sends at a time: the one that set this
        self._pending: dict[str, Pending] = {}
        self._points = 0
        self._error: StrongroomError | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._urgent = False
        self._retry: tuple[str, dict[str, Any], int] | None = None
        self._queued = 0  # sequence number of the last queued write
        self._committed = 0  # every write up to this number is committed
        self._refused: list[tuple[int, int, StrongroomError]] = []  # (first, last, why) of refused batches
        self.sent_batches = 0
        self._journal: Journal | None = None  # opened by the first journaled write
        self._journal_opening = threading.Lock()
        self.replayed: ReplaySummary | None = None  # what opening the journal replayed
        atexit.register(self.close)
        _flush_on_sigterm(self)

    # -- queueing ---------------------------------------------------------------------------

    def open_journal(self) -> Journal:
        """The writer's journal, opened on first use: asks the platform who the caller is (a
        journal is replayed only by its author: idempotency keys are kept per user), replays
        the journals of gone writers of this platform, team and user, then starts its own."""
        if self._journal is not None:
            return self._journal
        with self._journal_opening:
            if self._journal is None:
                folder = journal_folder()
                principal = str(self._session.whoami().user)
                self.replayed = replay_journals(self._session, self.team, principal, folder)
                for done in self.replayed.files:
                    if done.error:
                        _log.error("tracking journal %s not replayed: %s", done.path, done.error)
                journal = Journal(folder, platform_of(self._session), self.team, principal)
                with self._lock:
                    self._journal = journal
            return self._journal

    def _start(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name="strongroom-batch-writer", daemon=True)
            self._thread.start()

    def log_metric(
        self,
        component: str,
        name: str,
        value: float,
        step: int | None = None,
        timestamp: float | None = None,
        *,
        wait: bool = False,
        journaled: bool = False,
    ) -> int:
        """Queue one metric point; ``wait=True`` returns only once the server has committed it,
        ``journaled=True`` once it is appended to the local journal.

        Returns the write's sequence number (for ``commit``).
        """
        if self._closed:
            raise StrongroomError("this writer is closed; open a new Session")
        journal = self.open_journal() if journaled else None
        value, when = float(value), time.time() if timestamp is None else float(timestamp)
        with self._lock:
            seq = self._queued + 1
            if journal is not None:  # first: a write the journal refused (disk full) is not queued
                journal.write(tracking_batch.write_record(seq, "metric", component, n=name, v=value, s=step, t=when))
                self._send_soon()
            tracking_batch.add_metric(self._pending, component, name, value, step, when)
            self._points += 1
            self._queued = seq
            points = self._points
            if points >= self.max_points:
                self._lock.notify()
        if wait:
            self.commit(seq)
            return seq
        self._start()
        # What a kill -9 loses is what is queued plus the batch in flight, which was taken from
        # the queue: sending at half the bound keeps both together within ``max_queue``.
        if points >= self.max_queue // 2:
            self.flush()
        return seq

    def create(self, component: str, spec: dict[str, Any], *, wait: bool = False, journaled: bool = False) -> None:
        """Queue the creation of a component (sent before anything else about it)."""
        if self._closed:
            raise StrongroomError("this writer is closed; open a new Session")
        journal = self.open_journal() if journaled else None
        with self._lock:
            seq = self._queued + 1
            if journal is not None:
                journal.write(tracking_batch.write_record(seq, "create", component, spec=spec))
                self._send_soon()
            tracking_batch.add_create(self._pending, component, spec)
            self._queued = seq
        if wait:
            self.commit(seq)
        else:
            self._start()

    def _send_soon(self) -> None:
        """A journaled write was queued: have the sender send it within ``journal_linger``."""
        if self._send_by is None:
            self._send_by = time.monotonic() + self.journal_linger
            self._lock.notify()

    def request_flush(self) -> None:
        """Ask the background thread to send what is queued now, without waiting for it."""
        with self._lock:
            self._urgent = True
            self._lock.notify()
        self._start()

    def update(self, component: str, *, wait: bool = False, journaled: bool = False, **changes: Any) -> None:
        """Queue field changes (status, end_time, ...) and merges of parameters/inputs/outputs/tags."""
        if self._closed:
            raise StrongroomError("this writer is closed; open a new Session")
        journal = self.open_journal() if journaled else None
        with self._lock:
            seq = self._queued + 1
            if journal is not None:
                journal.write(tracking_batch.write_record(seq, "update", component, changes=changes))
                self._send_soon()
            tracking_batch.add_update(self._pending, component, changes)
            self._queued = seq
        if wait:
            self.commit(seq)
        else:
            self._start()

    def commit(self, seq: int) -> None:
        """Return once write number ``seq`` is committed, sending it (and all queued) if need be.

        Group commit: while one caller sends everything queued so far in one request, the others
        wait for its answer and usually find their write in it; then one of those still waiting
        becomes the sender. They wait on a condition the sender signals, not on a lock: a lock
        does not queue its waiters, so the caller that just sent, back at once with its next
        write, would take it again and again before the others were even scheduled, and they
        would wait through its round trips although theirs had been answered (a thread of eight
        waited 0.6 s so). Raises if the server refused the batch.
        """
        while self._become_sender(seq):
            try:
                self._send_locked(seq)
            finally:
                self._stop_sending()
        for first, last, error in self._refused:
            if first <= seq <= last:
                raise error

    # -- sending ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                round_ends = time.monotonic() + self.interval
                while not self._closed and not self._urgent and self._points < self.max_points:
                    deadline = round_ends if self._send_by is None else min(round_ends, self._send_by)
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._lock.wait(left)
                self._urgent = False
                if self._closed:
                    return
                if not self._pending and self._retry is None:
                    continue
            try:
                self._send()
            except StrongroomError as exc:
                if self._retry is None:  # refused by the server: raised by the next flush()/close()
                    self._error = exc
                time.sleep(min(self.interval, 1.0))

    def _become_sender(self, seq: int | None = None) -> bool:
        """Wait until no other thread sends, then be the sender (True). With ``seq``: False
        instead as soon as write ``seq`` is committed (nothing left to send for that caller)."""
        with self._progress:
            while self._sending and (seq is None or self._committed < seq):
                self._progress.wait()
            if seq is not None and self._committed >= seq:
                return False
            self._sending = True
            return True

    def _stop_sending(self) -> None:
        with self._progress:
            self._sending = False
            self._progress.notify_all()

    def _send(self) -> BatchResult | None:
        """Send what is queued now (and a batch that failed before) and wait for its commit."""
        with self._lock:
            until = self._queued
        self._become_sender()
        try:
            return self._send_locked(until)
        finally:
            self._stop_sending()

    def _send_locked(self, until: int) -> BatchResult | None:
        """Send the batch that failed last (identical, same idempotency key), then what is queued,
        until every write up to number ``until`` is committed.

        Called by the sender only (``_become_sender``). It stops there even if more was queued
        meanwhile: the threads that queued it send it themselves (one of them becomes the sender),
        so no caller is kept sending the others' writes after its own are committed.
        """
        result = None
        while True:
            if self._retry is None and self._committed >= until:
                return result
            if self._retry is None:
                with self._lock:
                    taken, self._pending, self._points = self._pending, {}, 0
                    self._send_by = None
                    upto = self._queued
                    journal = self._journal
                    if journal is not None and taken:
                        journal.rotate_if_large()
                if not taken:
                    self._advance(upto)
                    return result
                key, body = uuid.uuid4().hex, tracking_batch.batch_body(taken)
                self._retry = (key, body, upto)
                if journal is not None:  # a batch in flight at a crash is sent again as it is
                    journal.send(key, upto, body)
            key, body, upto = self._retry
            try:
                response = self._session.request(
                    "POST",
                    f"/api/v1/teams/{self.team}/trial-component-batches",
                    json_body=body,
                    idempotency_key=key,
                )
            except StrongroomError as exc:
                if not (exc.status >= 500 or exc.slug == "platform-unreachable"):
                    self._retry = None  # the server refused it: retrying cannot help
                    with self._lock:
                        self._refused = [*self._refused[-99:], (self._committed + 1, upto, exc)]
                    self._acknowledged(upto)
                    self._advance(upto)
                raise
            self._retry = None
            self._acknowledged(upto)
            self._advance(upto)
            self.sent_batches += 1
            result = BatchResult.model_validate(response.json())

    def _acknowledged(self, upto: int) -> None:
        if self._journal is not None:
            self._journal.ack(upto)

    def _advance(self, upto: int) -> None:
        """Every write up to ``upto`` is settled (committed, or refused): wake the callers waiting for it."""
        with self._progress:
            self._committed = max(self._committed, upto)
            self._progress.notify_all()

    def flush(self) -> None:
        """Send everything queued now and wait until the server has committed it.

        Raises the error of an earlier background send, if one failed.
        """
        self._send()  # raises if the platform still cannot be reached (the batch is kept for the next try)
        error, self._error = self._error, None
        if error is not None:
            raise error

    def close(self) -> None:
        """Flush and stop the background thread (idempotent; also runs at interpreter exit)."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            with self._lock:
                self._closed = True
                self._lock.notify_all()
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(timeout=10)
            if self._journal is not None:  # deleted once all is acknowledged, else left for a replay
                self._journal.close(delete=self._retry is None and not self._pending)
            atexit.unregister(self.close)


# Signals are process-wide, so the writers they must flush are too: one handler serves every
# live writer of the process (weakly held, a closed Session's writer is not kept alive).
_LIVE_WRITERS: weakref.WeakSet[BatchWriter] = weakref.WeakSet()


def _flush_on_sigterm(writer: BatchWriter) -> None:
    """On SIGTERM, send what every live writer has queued (bounded in time), then die of SIGTERM.

    Installed only from the main thread and only over the default action, so a handler the
    application installed itself is left alone.
    """
    _LIVE_WRITERS.add(writer)
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # ours already, or the application's own

    def on_sigterm(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        closing = [threading.Thread(target=_quiet_close, args=(w,), daemon=True) for w in list(_LIVE_WRITERS)]
        deadline = time.monotonic() + SIGTERM_FLUSH_SECONDS
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join(max(0.0, deadline - time.monotonic()))
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)


def _quiet_close(writer: BatchWriter) -> None:
    with contextlib.suppress(StrongroomError):  # the process is being terminated: nobody to raise it to
        writer.close()


class ExperimentsClient:
    """``session.experiments``: the experiments API of one team, with a background writer.

    The team is ``team=``, else ``$STRONGROOM_TEAM``, else the caller's only team.
    """

    def __init__(self, session: Session, team: str | None = None) -> None:
        self._s = session
        self._team = team
        self._writer: BatchWriter | None = None
        self._git: tuple[float, GitCommit | None] | None = None
        self._lock = threading.Lock()

    @property
    def team(self) -> str:
        if self._team is None:
            self._team = resolve_team(self._s)
        return self._team

    def for_team(self, team: str | None) -> ExperimentsClient:
        """This client if it already acts for ``team`` (or ``team`` is None), else one that does.

        Never resolves the default team first: a caller in several teams (or none, as an
        Auditor) names the one it wants.
        """
        if team is None or team == self._team:
            return self
        return ExperimentsClient(self._s, team)

    def _path(self, tail: str) -> str:
        return f"/api/v1/teams/{self.team}/{tail}"

    @property
    def writer(self) -> BatchWriter:
        with self._lock:
            if self._writer is None:
                self._writer = BatchWriter(self._s, self.team)
            return self._writer

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def git_state(self, max_age: float = 5.0) -> GitCommit | None:
        """The working tree's git state (cached briefly: capturing it runs git a few times)."""
        now = time.monotonic()
        if self._git is None or now - self._git[0] > max_age:
            self._git = (now, git.capture(os.getcwd()))
        return self._git[1]

    # -- experiments and trials -------------------------------------------------------------

    def create_experiment(self, name: str, display_name: str = "", description: str = "", **kw: Any) -> Experiment:
        body = {"name": name, "display_name": display_name, "description": description, "tags": kw.get("tags", {})}
        return self._s.call("POST", self._path("experiments"), Experiment, json_body=body)

    def describe_experiment(self, name: str) -> Experiment:
        return self._s.call("GET", self._path(f"experiments/{name}"), Experiment)

    def list_experiments(self) -> list[Experiment]:
        return _pages(self._s, self._path("experiments"), Experiment)

    def delete_experiment(self, name: str) -> None:
        self._s.request("DELETE", self._path(f"experiments/{name}"))

    def create_trial(self, name: str, experiment_name: str, display_name: str = "", **kw: Any) -> Trial:
        body = {"name": name, "experiment_name": experiment_name, "display_name": display_name}
        body["tags"] = kw.get("tags", {})
        return self._s.call("POST", self._path("trials"), Trial, json_body=body)

    def describe_trial(self, name: str) -> Trial:
        return self._s.call("GET", self._path(f"trials/{name}"), Trial)

    def list_trials(self, experiment_name: str | None = None) -> list[Trial]:
        return _pages(self._s, self._path("trials"), Trial, {"experiment": experiment_name})

    def delete_trial(self, name: str) -> None:
        self._s.request("DELETE", self._path(f"trials/{name}"))

    def associate(self, trial: str, component: str) -> None:
        self.flush()
        self._s.request("POST", self._path(f"trials/{trial}/components"), json_body={"component": component})

    def disassociate(self, trial: str, component: str) -> None:
        self._s.request("DELETE", self._path(f"trials/{trial}/components/{component}"))

    # -- trial components -------------------------------------------------------------------

    def create_component(self, name: str, **fields: Any) -> TrialComponent:
        """Create a component now (see ``ComponentCreate`` for the fields)."""
        body = {"name": name, **{k: v for k, v in fields.items() if v is not None}}
        return self._s.call("POST", self._path("trial-components"), TrialComponent, json_body=body)

    def describe_component(self, name: str) -> TrialComponent:
        self.flush()
        return self._s.call("GET", self._path(f"trial-components/{name}"), TrialComponent)

    def list_components(self, trial: str | None = None, source: str | None = None) -> list[TrialComponent]:
        self.flush()
        return _pages(self._s, self._path("trial-components"), TrialComponent, {"trial": trial, "source": source})

    def delete_component(self, name: str) -> None:
        self.flush()
        self._s.request("DELETE", self._path(f"trial-components/{name}"))

    def metric_series(self, component: str, metric: str) -> MetricSeries:
        self.flush()
        return self._s.call("GET", self._path(f"trial-components/{component}/metrics/{metric}"), MetricSeries)

    def log_batch(self, component: str, metrics: list[dict[str, Any]], chunk: int = 10_000) -> None:
        """Send metric points (``{"name", "value", "step"?, "timestamp"?}``) now, in requests of ``chunk``."""
        for start in range(0, len(metrics), chunk):
            part = metrics[start : start + chunk]
            now = time.time()
            columns = {
                "component": component,
                "names": [m["name"] for m in part],
                "values": [float(m["value"]) for m in part],
                "steps": [m.get("step") for m in part],
                "timestamps": [m.get("timestamp") or now for m in part],
            }
            self._s.request(
                "POST",
                self._path("trial-component-batches"),
                json_body={"creates": [], "components": [], "metrics": [columns]},
                idempotency_key=uuid.uuid4().hex,
            )

    def search(
        self,
        experiment_name: str | None = None,
        search_expression: dict[str, Any] | None = None,
        sort_by: str | None = None,
        sort_order: str = "Ascending",
    ) -> pd.DataFrame:
        """The analytics DataFrame (built server-side, sent as Arrow)."""
        import pyarrow as pa

        self.flush()
        body = {
            "experiment_name": experiment_name,
            "search_expression": search_expression,
            "sort_by": sort_by,
            "sort_order": sort_order,
        }
        response = self._s.request(
            "POST", self._path("trial-component-search"), json_body=body, headers={"accept": ARROW}
        )
        with pa.ipc.open_stream(response.content) as reader:
            table = reader.read_all()
        lists = ("Trials", "Experiments")
        frame = table.drop_columns([c for c in lists if c in table.column_names]).to_pandas()
        for column in lists:  # Python lists, as users of the managed service's DataFrame expect
            if column in table.column_names:
                frame[column] = [v if v is not None else [] for v in table.column(column).to_pylist()]
        return frame


def resolve_team(session: Session) -> str:
    """``$STRONGROOM_TEAM``, else the only team the caller holds a role in."""
    env = os.environ.get("STRONGROOM_TEAM")
    if env:
        return env
    teams = sorted({g.split("@", 1)[1] for g in session.whoami().grants if "@" in g})
    if len(teams) == 1:
        return teams[0]
    raise InvalidInput(
        "cannot tell which team to use"
        + (f" (you are in {', '.join(teams)})" if teams else " (you hold no team role)")
        + ": pass team=... or set STRONGROOM_TEAM",
        field="team",
    )


def _pages(session: Session, path: str, model: Any, params: dict[str, Any] | None = None) -> list[Any]:
    items: list[Any] = []
    query = {k: v for k, v in (params or {}).items() if v is not None}
    while True:
        body = session.request("GET", path, params=query).json()
        items.extend(model.model_validate(i) for i in body["items"])
        token = body.get("next_page_token")
        if not token:
            return items
        query["page_token"] = token
