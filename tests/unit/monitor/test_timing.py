"""When executions run and which capture hours a window reads."""

from __future__ import annotations

import datetime as dt

import pytest

from strongroom.core.errors import InvalidInput
from strongroom.monitor import timing
from strongroom.monitor.models import RunNow, ScheduleSpec
from strongroom.sdk.monitor import CronExpressionGenerator

UTC = dt.UTC


def test_the_managed_services_cron_and_five_fields_mean_the_same() -> None:
    assert timing.cron_expression(CronExpressionGenerator.hourly()) == "0 * * * *"
    assert timing.cron_expression(CronExpressionGenerator.daily(3)) == "0 3 * * *"
    assert timing.cron_expression("*/15 * * * *") == "*/15 * * * *"
    for bad in ("every hour", "cron(0 * ?)", "61 * * * *", ""):
        with pytest.raises(InvalidInput) as raised:
            timing.cron_expression(bad)
        assert raised.value.field == "schedule_cron_expression"


def test_an_hourly_fire_reads_the_hour_that_just_ended() -> None:
    created = dt.datetime(2026, 12, 6, 8, 35, tzinfo=UTC)
    fire = timing.next_fire("0 * * * *", created)
    assert fire == dt.datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    assert timing.previous_fire("0 * * * *", fire) == dt.datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def test_a_window_straddling_an_hour_touches_both_hours() -> None:
    start = dt.datetime(2020, 1, 2, 10, 59, tzinfo=UTC)
    hours = timing.hours_of(start, start + dt.timedelta(minutes=2))
    assert [timing.hour_prefix(h) for h in hours] == ["2020/01/02/10", "2020/01/02/11"]
    assert len(timing.hours_of(start.replace(minute=0), start.replace(hour=11, minute=0))) == 1
    assert timing.iso(start) == "2020-01-02T10:59:00Z"


def _spec(**overrides: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "name": "m",
        "endpoint": "e",
        "output_uri": "sr://risk-models/reports",
        "statistics_uri": "sr://risk-models/b/statistics.json",
        "constraints_uri": "sr://risk-models/b/constraints.json",
    }
    spec.update(overrides)
    return spec


def test_a_schedule_has_exactly_one_kind_of_timing() -> None:
    assert ScheduleSpec.model_validate(_spec(every_minutes=5)).every_minutes == 5
    for wrong in ({}, {"every_minutes": 5, "every_records": 100}):
        with pytest.raises(InvalidInput) as raised:
            ScheduleSpec.model_validate(_spec(**wrong))
        assert raised.value.field == "schedule_cron_expression"
    with pytest.raises(InvalidInput) as raised:
        ScheduleSpec.model_validate(_spec(schedule_cron_expression="hourly", name="Bad Name"))
    assert raised.value.field == "name"
    with pytest.raises(InvalidInput) as raised:
        ScheduleSpec.model_validate(_spec(every_minutes=1, excluded_columns=["Label", "Label"]))
    assert raised.value.field == "excluded_columns"


def test_run_now_needs_zoned_times_in_order() -> None:
    naive = dt.datetime(2026, 1, 1, 10)
    with pytest.raises(InvalidInput):
        RunNow(start=naive)
    with pytest.raises(InvalidInput) as raised:
        RunNow(start=naive.replace(tzinfo=UTC), end=naive.replace(tzinfo=UTC))
    assert raised.value.field == "start"
