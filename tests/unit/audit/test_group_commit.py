"""Concurrent audited calls share their durability flushes (group commit) and the chain still verifies."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from strongroom.audit.log import AuditFilter, _GroupFlush
from strongroom.core.context import Grant
from strongroom.platform import Platform
from tests.support import context_for


def test_a_wait_returns_only_after_a_flush_that_started_after_it() -> None:
    starts: list[float] = []
    release = threading.Event()

    def flush() -> None:
        starts.append(time.monotonic())
        release.wait(5)

    group = _GroupFlush(flush)
    first = threading.Thread(target=group.wait)
    first.start()
    while not starts:  # the first flush is under way, and it began before the second call
        time.sleep(0.001)
    called = time.monotonic()
    returned: list[float] = []
    second = threading.Thread(target=lambda: (group.wait(), returned.append(time.monotonic())))
    second.start()
    time.sleep(0.05)
    assert not returned  # the flush under way began before this call: it does not cover it
    release.set()
    first.join(5)
    second.join(5)
    assert len(starts) == 2 and starts[1] >= called
    assert returned and returned[0] >= starts[1]


def test_concurrent_waits_share_flushes_and_a_failed_flush_fails_its_waiters() -> None:
    flushes: list[int] = []
    failing = threading.Event()

    def flush() -> None:
        time.sleep(0.01)  # about a WAL fsync
        if failing.is_set():
            raise OSError("the database went away")
        flushes.append(1)

    group = _GroupFlush(flush)
    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(group.wait) for _ in range(64)]:
            future.result(10)
    assert 0 < len(flushes) < 64

    failing.set()
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(group.wait) for _ in range(4)]
        for future in futures:
            with pytest.raises(OSError, match="went away"):
                future.result(10)  # fail closed: no call answers without its flush
    failing.clear()
    group.wait()  # the next flush succeeds again


def test_concurrent_creates_are_each_audited_once_and_the_chain_verifies(platform: Platform) -> None:
    admin = context_for("admin", Grant("PlatformAdmin", ""))
    names = [f"analyst-{t}-{i}" for t in range(8) for i in range(12)]

    def create(name: str) -> None:
        platform.identity.create_user(admin, name)

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(create, name) for name in names]:
            future.result(60)
    events = platform.audit_log.query(AuditFilter(action="CreateUser", limit=1000))
    assert sorted(e.resource.rsplit("/", 1)[1] for e in events if e.outcome == "success") == sorted(names)
    assert platform.audit_log.checkpoint() is not None
    report = platform.audit_log.verify()
    assert report.ok, report.problem
    if not platform.db.is_sqlite:
        assert 0 < platform.audit_log.flushes < len(names)  # group commit: flushes were shared
