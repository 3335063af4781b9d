"""The SDK's batch writer without a server: group commit across threads (durable), the queue bound (buffered).

A fake session answers each batch after a short round trip and records which thread sent it.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any, cast

from strongroom.sdk.session import Session
from strongroom.sdk.tracking import BatchWriter
from strongroom.sdk.tracking_journal import Journal, journal_folder


class _Response:
    def json(self) -> dict[str, Any]:
        return {"components": 0, "created": 0, "metrics": 1, "parameters": 0, "artifacts": 0}


class _FakeSession:
    """Commits every batch after ``round_trip`` seconds; remembers what each thread sent."""

    def __init__(self, round_trip: float) -> None:
        self.round_trip = round_trip
        self.lock = threading.Lock()
        self.sent_by: dict[str, int] = {}
        self.stored: dict[str, list[int]] = {}
        self.in_flight = 0
        self.overlapped = False
        self.answered = 0  # requests answered so far

    def request(self, method: str, path: str, *, json_body: Any = None, **_: Any) -> _Response:
        with self.lock:
            self.in_flight += 1
            self.overlapped |= self.in_flight > 1
        time.sleep(self.round_trip)
        with self.lock:
            self.in_flight -= 1
            self.answered += 1
            name = threading.current_thread().name
            self.sent_by[name] = self.sent_by.get(name, 0) + 1
            for columns in json_body["metrics"]:
                for metric, step in zip(columns["names"], columns["steps"], strict=True):
                    self.stored.setdefault(metric, []).append(step)
        return _Response()


def test_durable_callers_share_round_trips_and_each_returns_once_its_write_is_answered() -> None:
    session = _FakeSession(round_trip=0.02)
    writer = BatchWriter(cast(Session, session), "risk")
    threads, per_thread = 8, 8
    waited: list[int] = []  # per call: how many requests were answered while it waited

    def work(k: int) -> None:
        for step in range(per_thread):
            before = session.answered
            writer.log_metric("component", f"worker-{k}", float(step), step, wait=True)
            with session.lock:
                waited.append(session.answered - before)
                assert step in session.stored[f"worker-{k}"]  # committed when the call returns

    pool = [threading.Thread(target=work, args=(k,), name=f"worker-{k}") for k in range(threads)]
    try:
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    finally:
        writer.close()
    assert not session.overlapped  # one request in flight at a time
    assert {m: sorted(s) for m, s in session.stored.items()} == {
        f"worker-{k}": list(range(per_thread)) for k in range(threads)
    }
    assert sum(session.sent_by.values()) < threads * per_thread  # group commit
    # A write goes out with the next request (after the one in flight, if any) and its caller
    # returns with that answer. Before, callers queued on a lock that the caller just answered
    # took again at once, so some waited through many more answers than their own.
    assert max(waited) <= 3, sorted(waited)[-10:]


def test_flush_sends_what_was_queued_and_raises_nothing_when_all_is_committed() -> None:
    session = _FakeSession(round_trip=0.0)
    writer = BatchWriter(cast(Session, session), "risk")
    try:
        for step in range(5):
            writer.log_metric("component", "loss", 1.0 / (step + 1), step)
        writer.flush()
        assert session.stored == {"loss": [0, 1, 2, 3, 4]}
        writer.flush()  # nothing queued: no request
        assert sum(session.sent_by.values()) >= 1
    finally:
        writer.close()


def test_a_buffered_caller_far_ahead_of_the_platform_never_risks_more_than_the_queue_bound() -> None:
    # docs/experiments.md: a kill -9 loses "never more than 100,000 points" (``max_queue``). What
    # it would lose at any moment is every point logged but not yet answered: the queue and the
    # batch in flight. A caller logging faster than the platform commits (here a slow round trip)
    # must be held back before the two together pass the bound; before, the queue alone was
    # bounded and a full queue behind a full batch in flight risked twice as many.
    session = _FakeSession(round_trip=0.1)
    bound = 10_000
    writer = BatchWriter(cast(Session, session), "risk", max_points=500, max_queue=bound)
    count, worst = 40_000, 0
    try:
        for step in range(count):
            writer.log_metric("component", "loss", 0.5, step)
            with session.lock:
                at_risk = step + 1 - len(session.stored.get("loss", []))
            worst = max(worst, at_risk)
        writer.flush()
    finally:
        writer.close()
    assert worst <= bound, f"a kill -9 would have lost {worst:,} points"
    assert sorted(session.stored["loss"]) == list(range(count))


def test_a_sigterm_handler_of_the_application_is_left_in_place() -> None:
    # docs/experiments.md: the SDK flushes on SIGTERM only if the program has not installed a
    # SIGTERM handler of its own (which then calls flush() itself); it must never replace it.
    def mine(signum: int, frame: Any) -> None:
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        writer = BatchWriter(cast(Session, _FakeSession(round_trip=0.0)), "risk")
        writer.close()
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def _sent_within(session: _FakeSession, points: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with session.lock:
            if len(session.stored.get("loss", [])) >= points:
                return True
        time.sleep(0.005)
    return False


def test_journaled_writes_are_sent_within_the_linger_and_together(tmp_path: Path) -> None:
    session = _FakeSession(round_trip=0.0)
    writer = BatchWriter(cast(Session, session), "risk", interval=30.0)  # a round far longer than the test
    writer._journal = Journal(journal_folder(tmp_path / "journal"), "https://platform.example", "risk", "alice")
    try:
        started = time.monotonic()
        for step in range(100):
            writer.log_metric("component", "loss", 0.5, step, journaled=True)
        assert _sent_within(session, 100, 5.0), "journaled writes waited for the round interval"
        assert time.monotonic() - started < 2.0  # the linger is 0.05 s; the rest is scheduling
        # A busy caller's writes still travel together, not one request each (a loaded machine may split them).
        assert session.answered <= 10
    finally:
        writer.close()


def test_buffered_writes_still_wait_for_the_round() -> None:
    session = _FakeSession(round_trip=0.0)
    writer = BatchWriter(cast(Session, session), "risk", interval=30.0)
    try:
        writer.log_metric("component", "loss", 0.5, 0)
        assert not _sent_within(session, 1, 0.5)  # buffered: sent with the round (or a flush), as documented
        writer.flush()
        assert session.stored["loss"] == [0]
    finally:
        writer.close()
