"""The shift schedule of the profile's [shift] section: which phase the wall clock is in.

Phases: off_day, before, on, lunch, after. Attendance and away read the phase from the facts.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal

from pydantic import Field

from edge.base.schema import Duration, Section, TimeOfDay

Phase = Literal["off_day", "before", "on", "lunch", "after"]


class ShiftSettings(Section):
    start: TimeOfDay  # log in by
    end: TimeOfDay  # not before
    lunch_start: TimeOfDay
    lunch_end: TimeOfDay
    ready_before: Duration  # be ready this long before start
    workdays: list[int] = Field(min_length=0)  # ISO weekdays, 1 = Monday


def _at(day: date, when: time, like: datetime) -> datetime:
    return datetime.combine(day, when, tzinfo=like.tzinfo)


def phase_at(settings: ShiftSettings, wall: datetime) -> Phase:
    if wall.isoweekday() not in settings.workdays:
        return "off_day"
    now = wall.timetz().replace(tzinfo=None)
    if now < settings.start:
        return "before"
    if now >= settings.end:
        return "after"
    if settings.lunch_start <= now < settings.lunch_end:
        return "lunch"
    return "on"


def boundaries(settings: ShiftSettings, day: date, like: datetime) -> list[datetime]:
    """Every moment of `day` at which the phase or a check may change, in order."""
    marks = [
        _at(day, settings.start, like) - timedelta(seconds=settings.ready_before),
        _at(day, settings.start, like),
        _at(day, settings.lunch_start, like),
        _at(day, settings.lunch_end, like),
        _at(day, settings.end, like),
        _at(day + timedelta(days=1), time(0, 0), like),
    ]
    return sorted(marks)


def next_boundary(settings: ShiftSettings, wall: datetime) -> datetime:
    for mark in boundaries(settings, wall.date(), wall):
        if mark > wall:
            return mark
    return _at(wall.date() + timedelta(days=1), time(0, 0), wall)
