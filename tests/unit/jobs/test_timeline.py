"""A job's timeline: phases start when the executor saw them start, not when its batch was written."""

from __future__ import annotations

import datetime as dt
import itertools

from strongroom.jobs.db import JobRow
from strongroom.jobs.models import PHASES, Job, StatusTransition
from strongroom.jobs.service import _finish, _transition

T0 = dt.datetime(2026, 12, 6, 14, 0, tzinfo=dt.UTC)


def _row() -> JobRow:
    start = {"status": "Starting", "start": T0.isoformat(), "end": None, "message": "queued"}
    return JobRow(transitions=[start], secondary_status="Starting", status="InProgress")


def _at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def _timeline(row: JobRow) -> Job:
    transitions = [StatusTransition.model_validate(t) for t in row.transitions]
    return Job.model_construct(status_transitions=transitions)


def test_statuses_seen_in_one_batch_keep_their_own_times() -> None:
    row = _row()
    # One flush carries three statuses seen 0.3 s, 0.9 s and 1.4 s after the job was created.
    for status, seconds in (("Starting", 0.3), ("Downloading", 0.9), ("Parsing", 1.4)):
        _transition(row, status, "", _at(seconds))
    _transition(row, "Training", "data loaded", _at(2.0))
    _transition(row, "Uploading", "", _at(6.5))
    _transition(row, "Completing", "", _at(6.6))
    _finish(row, "Completed", "")
    row.ended_at = dt.datetime.fromisoformat(row.transitions[-1]["start"])
    phases = _timeline(row).timeline
    assert [p.phase for p in phases] == [
        "queue",
        "sandbox start",
        "input download and decryption",
        "parsing",
        "training",
        "output encryption and upload",
        "completion (outputs, lineage)",
    ]
    assert [p.seconds for p in phases[:6]] == [0.3, 0.6, 0.5, 0.6, 4.5, 0.1]
    assert all(a.end == b.start for a, b in itertools.pairwise(phases))
    assert phases[-1].end == row.ended_at


def test_a_status_stamped_before_the_open_phase_began_never_makes_a_negative_phase() -> None:
    row = _row()
    _transition(row, "Downloading", "", _at(2.0))
    _transition(row, "Parsing", "", _at(1.5))  # a clock step back: the phase is empty, not negative
    phases = _timeline(row).timeline
    assert [p.seconds for p in phases[:-1]] == [2.0, 0.0]
    assert phases[-1].start == _at(2.0)


def test_every_secondary_status_the_platform_sets_has_a_phase_name() -> None:
    for status in ("Starting", "Downloading", "Parsing", "Training", "Uploading", "Completing", "Stopping"):
        assert status in PHASES
