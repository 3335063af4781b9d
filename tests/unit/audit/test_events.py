"""The event bus delivers audit and state events to subscribers and rules, in order."""

from __future__ import annotations

import threading

import pytest

from strongroom.audit.events import Event, EventBus, Rule
from strongroom.core.context import Grant
from strongroom.core.errors import Conflict
from strongroom.platform import Platform
from tests.support import context_for


class Recorder(Rule):
    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[Event] = []

    def matches(self, event: Event) -> bool:
        return event.kind == "state" and event.name == "TeamCreated"

    def handle(self, event: Event) -> None:
        self.seen.append(event)


def test_order_and_isolation_of_failing_subscribers() -> None:
    bus = EventBus()
    got: list[str] = []
    bus.subscribe(lambda e: (_ for _ in ()).throw(RuntimeError("boom")))
    bus.subscribe(lambda e: got.append(e.name))
    for i in range(100):
        bus.publish(Event("state", f"e{i}"))
    assert bus.drain()
    assert got == [f"e{i}" for i in range(100)]
    bus.close()


def test_kind_filter_and_unsubscribe() -> None:
    bus = EventBus()
    got: list[str] = []
    stop = bus.subscribe(lambda e: got.append(e.name), kinds={"audit"})
    bus.publish(Event("state", "s"))
    bus.publish(Event("audit", "a"))
    bus.drain()
    stop()
    bus.publish(Event("audit", "b"))
    bus.drain()
    assert got == ["a"]
    bus.close()


def test_guarded_calls_publish_audit_and_state_events_after_commit(platform: Platform) -> None:
    rule = Recorder()
    audited: list[Event] = []
    lock = threading.Lock()
    platform.bus.add_rule(rule)
    platform.bus.subscribe(lambda e: (lock.acquire(), audited.append(e), lock.release()), kinds={"audit"})
    admin = context_for("admin", Grant("PlatformAdmin"))
    platform.identity.create_team(admin, "risk")
    with pytest.raises(Conflict):
        platform.identity.create_team(admin, "risk")  # audited, but no state event
    platform.bus.drain()
    assert [e.data["team"] for e in rule.seen] == ["risk"]
    outcomes = [e.data["outcome"] for e in audited if e.name == "CreateTeam"]
    assert outcomes == ["success", "conflict"]
