"""When monitoring executions run and which capture window each one reads.

- **Cron** (``cron(0 * ? * * *)`` as the managed service writes it, or a five-field expression such
  as ``0 * * * *``): at each fire time ``t`` the window is ``[previous fire time, t)``, so an hourly
  schedule reads the hour that just ended.
- **Every N minutes**: windows of N minutes back to back, from the schedule's creation.
- **Every N captured records**: a window closes once the endpoint has captured N records since the
  previous window ended.

An execution starts ``capture lag`` seconds after its window ends: an endpoint uploads its capture
spool every few seconds, and a record answered just before the end must be in the bucket before its
window is read. A window is half-open, ``[start, end)``, on each record's ``inferenceTime``; its
capture files are those of every hour it touches (``.../yyyy/mm/dd/hh/``), so a window straddling
an hour boundary reads both hours' files and keeps exactly the records inside it.
"""

from __future__ import annotations

import datetime as dt
import re

from croniter import croniter

from strongroom.core.errors import InvalidInput

_AWS_CRON = re.compile(r"cron\((.+)\)\s*")


def cron_expression(expression: str) -> str:
    """A five-field cron expression from ``cron(m h dom mon dow [year])`` or a five-field one.

    Raises:
        InvalidInput: not a cron expression croniter accepts (the field is ``schedule_cron_expression``).
    """
    text = expression.strip()
    found = _AWS_CRON.fullmatch(text)
    fields = (found.group(1) if found else text).split()
    if found and len(fields) == 6:
        fields = fields[:5]  # the managed service's year field: every year
    if len(fields) != 5:
        raise InvalidInput(
            f"{expression!r} is not a cron expression: write cron(0 * ? * * *) or five fields such as '0 * * * *'",
            field="schedule_cron_expression",
        )
    five = " ".join("*" if f == "?" else f for f in fields)
    if not croniter.is_valid(five):
        raise InvalidInput(f"{expression!r} is not a valid cron expression", field="schedule_cron_expression")
    return five


def next_fire(expression: str, after: dt.datetime) -> dt.datetime:
    """The first fire time of the five-field ``expression`` strictly after ``after`` (UTC)."""
    return croniter(expression, after.astimezone(dt.UTC)).get_next(dt.datetime).astimezone(dt.UTC)


def previous_fire(expression: str, at: dt.datetime) -> dt.datetime:
    """The fire time before ``at`` (the start of the window that ends at ``at``)."""
    return croniter(expression, at.astimezone(dt.UTC)).get_prev(dt.datetime).astimezone(dt.UTC)


def hours_of(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The UTC hours ``[start, end)`` touches, each as the hour's first instant."""
    hour = start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < end:
        out.append(hour)
        hour += dt.timedelta(hours=1)
    return out


def hour_prefix(hour: dt.datetime) -> str:
    """``yyyy/mm/dd/hh``: how capture objects of that hour are keyed."""
    return hour.strftime("%Y/%m/%d/%H")


def iso(moment: dt.datetime) -> str:
    """``2026-12-06T10:00:00Z``: how windows are named in messages and hyperparameters."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{moment.microsecond // 1000:03d}Z" if moment.microsecond else "Z"
    )
