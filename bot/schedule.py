"""When a schedule's slots fall, in a time zone, across daylight-saving changes. Pure: no I/O, no clock.

A `Schedule` is daily (at HH:MM local), weekly (on some days, at HH:MM local), or every N hours (N
dividing 24, from a local HH:MM). Daily and weekly slots happen once per local date: a time that does not
exist that day (the clocks jump over it) falls at the first minute that exists after it; a time that
happens twice (the clocks go back) falls at its first occurrence only. Every-N-hours slots are N real
hours apart, counted from the first local `from` time after the schedule was set.

zoneinfo does the zone arithmetic (the `tzdata` package supplies the database where the system has none).
Every function takes and returns aware datetimes; slots come back in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLOCK = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")
MAX_GAP = timedelta(hours=3)  # no zone's clocks jump further in one go


class ScheduleError(ValueError):
    """A schedule that cannot be: the message says what was wrong (in English; the edge has its own words)."""


def zone(name: str) -> ZoneInfo:
    """An IANA time zone by name (`Asia/Seoul`); ScheduleError if there is none."""
    if not name or ("/" not in name and name not in ("UTC", "GMT")) or ".." in name or name.startswith("/"):
        raise ScheduleError(f"{name!r} is not an IANA time zone name, like Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(f"{name!r} is not an IANA time zone name, like Europe/Berlin") from None


def clock_time(text: str) -> time:
    """`HH:MM` on a 24-hour clock; ScheduleError otherwise (`25:00`, `3am`)."""
    match = CLOCK.match(text.strip())
    if not match:
        raise ScheduleError(f"{text!r} is not a time like 02:30 (24-hour clock)")
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class Schedule:
    cadence: str  # daily, weekly, hourly
    at: time  # local time of day (for hourly: the first `from`)
    zone_name: str
    days: tuple[int, ...] = ()  # weekly: 0 = Monday
    every_hours: int = 24  # hourly: the period

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.zone_name)

    @property
    def period(self) -> timedelta:
        if self.cadence == "hourly":
            return timedelta(hours=self.every_hours)
        return timedelta(days=7) if self.cadence == "weekly" and len(self.days) == 1 else timedelta(days=1)

    def words(self) -> str:
        """The schedule as typed (`daily 02:30 Europe/Berlin`): for audit details and logs."""
        at = self.at.strftime("%H:%M")
        if self.cadence == "daily":
            return f"daily {at} {self.zone_name}"
        if self.cadence == "weekly":
            return f"weekly {','.join(DAYS[d] for d in self.days)} {at} {self.zone_name}"
        return f"every {self.every_hours}h from {at} {self.zone_name}"


def local_slot(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The moment `at` happens on local `day`: its first occurrence if it happens twice, the first minute
    that exists after it if the clocks jump over it."""
    wanted = datetime.combine(day, at)
    candidate = wanted.replace(tzinfo=tz, fold=0)
    if _exists(candidate):
        return candidate.astimezone(UTC)
    moment = wanted
    while moment - wanted <= MAX_GAP:
        moment += timedelta(minutes=1)
        probe = moment.replace(tzinfo=tz, fold=0)
        if _exists(probe):
            return probe.astimezone(UTC)
    raise ScheduleError(f"{at} does not exist on {day} in {tz.key}")  # pragma: no cover - no zone jumps 3 h


def _exists(moment: datetime) -> bool:
    """Does this local wall time exist (it reads the same after a round trip through UTC)?"""
    back = moment.astimezone(UTC).astimezone(moment.tzinfo)
    return back.replace(tzinfo=None) == moment.replace(tzinfo=None)


def slots(schedule: Schedule, start: datetime, end: datetime, *, anchor: datetime | None = None) -> list[datetime]:
    """Every slot in [start, end), in UTC, in order. `anchor` (hourly): when the schedule was set."""
    tz = schedule.tz
    if schedule.cadence == "hourly":
        first = first_hourly(schedule, anchor or start)
        step = schedule.period
        if end <= first:
            return []
        skip = max(0, int((start - first) / step)) if start > first else 0
        found, moment = [], first + skip * step
        while moment < end:
            if moment >= start:
                found.append(moment)
            moment += step
        return found
    found = []
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    while day <= last:
        if schedule.cadence == "daily" or day.weekday() in schedule.days:
            moment = local_slot(day, schedule.at, tz)
            if start <= moment < end:
                found.append(moment)
        day += timedelta(days=1)
    return found


def first_hourly(schedule: Schedule, anchor: datetime) -> datetime:
    """An every-N-hours schedule's first slot: the first local `from` time at or after `anchor`."""
    tz = schedule.tz
    day = anchor.astimezone(tz).date()
    for offset in range(3):
        moment = local_slot(day + timedelta(days=offset), schedule.at, tz)
        if moment >= anchor:
            return moment
    raise ScheduleError("no first slot")  # pragma: no cover


def next_slot(schedule: Schedule, after: datetime, *, anchor: datetime | None = None) -> datetime:
    """The first slot strictly after `after`."""
    horizon = timedelta(days=8) + schedule.period
    found = slots(schedule, after + timedelta(microseconds=1), after + horizon, anchor=anchor)
    return found[0]


def next_slots(schedule: Schedule, after: datetime, count: int, *, anchor: datetime | None = None) -> list[datetime]:
    found, moment = [], after
    for _ in range(count):
        moment = next_slot(schedule, moment, anchor=anchor)
        found.append(moment)
    return found


def previous_slot(schedule: Schedule, before: datetime, *, anchor: datetime | None = None) -> datetime | None:
    """The last slot at or before `before` (and at or after `anchor`, when given)."""
    horizon = timedelta(days=8) + schedule.period
    start = before - horizon
    if anchor is not None:
        start = max(start, anchor)
    found = slots(schedule, start, before + timedelta(microseconds=1), anchor=anchor)
    return found[-1] if found else None
