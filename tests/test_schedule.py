"""When slots fall (bot/schedule.py): once per local date across daylight-saving nights, in four zones.

croniter and APScheduler 3 fire a 02:30 job twice on a fall-back night, and skip or shift it on a
spring-forward one; these pin what the bot does instead: a time that does not exist runs at the first minute
after it, a time that happens twice runs at its first occurrence only, and every-N-hours runs on real hours.
"""

import itertools
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.schedule import Schedule, ScheduleError, clock_time, local_slot, next_slots, previous_slot, slots, zone


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone_name", "day", "at", "expected"),
    [
        # Europe/Berlin: 02:00-02:59 does not exist on 29 March 2026, happens twice on 25 October 2026
        ("Europe/Berlin", date(2026, 3, 29), "02:30", utc(2026, 3, 29, 1, 0)),  # 03:00 CEST, the first minute after
        ("Europe/Berlin", date(2026, 10, 25), "02:30", utc(2026, 10, 25, 0, 30)),  # 02:30 CEST, the first of two
        # America/New_York: 02:00-02:59 does not exist on 8 March; 01:00-01:59 happens twice on 1 November
        ("America/New_York", date(2026, 3, 8), "02:30", utc(2026, 3, 8, 7, 0)),  # 03:00 EDT
        ("America/New_York", date(2026, 11, 1), "01:30", utc(2026, 11, 1, 5, 30)),  # 01:30 EDT, not EST
        # Australia/Lord_Howe moves by half an hour: 02:00-02:29 does not exist on 4 October 2026,
        # 01:30-01:59 happens twice on 5 April 2026
        ("Australia/Lord_Howe", date(2026, 10, 4), "02:15", utc(2026, 10, 3, 15, 30)),  # 02:30 +11
        ("Australia/Lord_Howe", date(2026, 4, 5), "01:45", utc(2026, 4, 4, 14, 45)),  # 01:45 +11, the first
        # Asia/Seoul keeps no daylight saving
        ("Asia/Seoul", date(2026, 12, 3), "09:00", utc(2026, 12, 3, 0, 0)),
    ],
)
def test_a_daily_time_falls_once_on_its_local_date(zone_name, day, at, expected):
    assert local_slot(day, clock_time(at), zone(zone_name)) == expected
    schedule = Schedule("daily", clock_time(at), zone_name)
    around = slots(
        schedule,
        utc(day.year, day.month, day.day) - timedelta(days=1),
        utc(day.year, day.month, day.day) + timedelta(days=2),
    )
    local_dates = [s.astimezone(zone(zone_name)).date() for s in around]
    assert len(local_dates) == len(set(local_dates)), "never twice on one local date"
    assert expected in around


@pytest.mark.parametrize(
    ("zone_name", "start"),
    [
        ("Europe/Berlin", utc(2026, 10, 23)),
        ("Europe/Berlin", utc(2026, 3, 27)),
        ("America/New_York", utc(2026, 10, 30)),
        ("America/New_York", utc(2026, 3, 6)),
        ("Australia/Lord_Howe", utc(2026, 4, 2)),
        ("Australia/Lord_Howe", utc(2026, 10, 2)),
        ("Asia/Seoul", utc(2026, 12, 1)),
    ],
)
@pytest.mark.parametrize("at", ["00:00", "01:30", "01:45", "02:00", "02:15", "02:30", "03:00", "23:59"])
def test_across_a_daylight_saving_week_every_local_date_has_exactly_one_slot(zone_name, start, at):
    schedule = Schedule("daily", clock_time(at), zone_name)
    found = slots(schedule, start, start + timedelta(days=7))
    tz = zone(zone_name)
    dates = [s.astimezone(tz).date() for s in found]
    assert len(dates) == len(set(dates)) and len(found) in (6, 7, 8)
    first_date = start.astimezone(tz).date()
    for day in (first_date + timedelta(days=n) for n in range(1, 6)):
        assert dates.count(day) == 1, day
    for slot in found:
        local = slot.astimezone(tz)
        if local.strftime("%H:%M") != at:  # only where `at` does not exist that day: then the first minute after
            wanted = datetime.combine(local.date(), clock_time(at)).replace(tzinfo=tz)
            assert wanted.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wanted.replace(tzinfo=None)
            assert timedelta(0) < local.replace(tzinfo=None) - wanted.replace(tzinfo=None) <= timedelta(hours=1)
        else:
            assert local.fold == 0, "a time that happens twice: its first occurrence"


def test_weekly_falls_only_on_its_days():
    schedule = Schedule("weekly", time(3, 0), "Europe/Berlin", days=(0, 3))
    found = slots(schedule, utc(2026, 11, 30), utc(2026, 12, 14))
    assert [s.astimezone(zone("Europe/Berlin")).strftime("%a %d %H:%M") for s in found] == [
        "Mon 30 03:00", "Thu 03 03:00", "Mon 07 03:00", "Thu 10 03:00",
    ]  # fmt: skip


def test_every_n_hours_counts_real_hours_from_the_first_from_after_it_was_set():
    schedule = Schedule("hourly", time(1, 0), "Europe/Berlin", every_hours=6)
    set_at = utc(2026, 10, 24, 12, 0)  # 14:00 CEST: the first 01:00 after it is 01:00 CEST on the 25th
    found = slots(schedule, set_at, utc(2026, 10, 26), anchor=set_at)
    assert found[0] == utc(2026, 10, 24, 23, 0)
    assert all(b - a == timedelta(hours=6) for a, b in itertools.pairwise(found)), "real hours, DST or not"
    assert previous_slot(schedule, set_at, anchor=set_at) is None, "nothing before it was set"


def test_next_runs_are_strictly_after_now():
    schedule = Schedule("daily", time(2, 30), "Asia/Seoul")
    now = utc(2026, 12, 2, 17, 30)  # 02:30 in Seoul exactly
    assert next_slots(schedule, now, 2) == [utc(2026, 12, 3, 17, 30), utc(2026, 12, 4, 17, 30)]
    assert previous_slot(schedule, now) == now


@pytest.mark.parametrize("bad", ["Mars/Base", "Seoul", "", "../etc/passwd", "Europe/../../x"])
def test_an_unknown_zone_is_refused(bad):
    with pytest.raises(ScheduleError):
        zone(bad)


@pytest.mark.parametrize("bad", ["3am", "24:00", "2:5", "02:60", "", "0230"])
def test_a_time_that_is_not_hh_mm_is_refused(bad):
    with pytest.raises(ScheduleError):
        clock_time(bad)


ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Seoul", "UTC", "America/Santiago"]


@settings(max_examples=200, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1)).map(
        lambda d: d.replace(tzinfo=UTC)
    ),
)
def test_any_daily_schedule_falls_once_per_local_date_in_any_month(zone_name, hour, minute, start):
    schedule = Schedule("daily", time(hour, minute), zone_name)
    found = slots(schedule, start, start + timedelta(days=40))
    tz = zone(zone_name)
    dates = [s.astimezone(tz).date() for s in found]
    assert len(dates) == len(set(dates))
    assert 38 <= len(found) <= 41
    assert found == sorted(found)
    for slot in found:  # never before its time on its date (a skipped time moves later, never earlier)
        local = slot.astimezone(tz)
        assert (local.hour, local.minute) >= (hour, minute)
