"""What a policy's retention keeps and deletes (bot/retention.py): properties over any backups, and the
Proxmox-style daily/weekly/monthly examples."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.retention import MAX_DELETIONS, Candidate, Keep, plan

UTC_ZONE = ZoneInfo("UTC")
START = datetime(2026, 12, 3, 2, 30, tzinfo=UTC)


def daily(n: int, *, completed=True, own=True, pinned=False, first_id=1) -> list[Candidate]:
    """n backups, one a day, the newest first taken at START."""
    return [Candidate(first_id + i, START - timedelta(days=i), completed, own, pinned) for i in range(n)]


def test_keep_last_keeps_the_newest_and_deletes_the_oldest_first():
    result = plan(daily(6), Keep(last=3), UTC_ZONE)
    assert result.keep == [1, 2, 3]
    assert result.delete == [6, 5, 4]
    assert result.later == []


def test_at_most_three_deletions_a_prune_the_rest_later():
    result = plan(daily(9), Keep(last=2), UTC_ZONE)
    assert result.delete == [9, 8, 7] and result.later == [6, 5, 4, 3]


def test_failed_backups_count_for_nothing_and_go_first():
    backups = [*daily(3), Candidate(10, START - timedelta(hours=1), False, True)]
    result = plan(backups, Keep(last=3), UTC_ZONE)
    assert result.keep == [1, 2, 3] and result.delete == [10]


def test_pinned_others_and_automatic_are_never_candidates():
    backups = [
        *daily(4),
        Candidate(20, START - timedelta(days=30), True, True, pinned=True),
        Candidate(21, START - timedelta(days=40), True, own=False),
    ]
    result = plan(backups, Keep(last=1), UTC_ZONE)
    assert 20 not in result.delete + result.later and 21 not in result.delete + result.later
    assert result.keep == [1]


def test_never_fewer_than_one_completed():
    backups = [Candidate(1, START, True, True), Candidate(2, START - timedelta(days=1), False, True)]
    assert plan(backups, Keep(daily=0, weekly=1), UTC_ZONE).keep == [1]


def test_daily_weekly_monthly_the_proxmox_way():
    """30 daily backups ending Thursday 3 December 2026, keep daily 3 weekly 2 monthly 2, as PBS's prune marks
    them: the newest of each of the last 3 days; then of 2 earlier ISO weeks (week 49 already holds a daily);
    then of 2 months not yet holding a kept backup: December and November both do, and there is no October."""
    backups = daily(30)
    result = plan(backups, Keep(daily=3, weekly=2, monthly=2), UTC_ZONE)
    dates = {b.id: b.created_at.date().isoformat() for b in backups}
    assert [dates[i] for i in result.keep] == ["2026-12-03", "2026-12-02", "2026-12-01", "2026-11-29", "2026-11-22"]
    with_october = [*backups, Candidate(99, START - timedelta(days=40), True, True)]
    again = plan(with_october, Keep(daily=3, weekly=2, monthly=2), UTC_ZONE)
    assert 99 in again.keep, "a month with no kept backup yet: its newest is kept"


def test_a_gap_does_not_use_up_a_day():
    backups = [Candidate(1, START, True, True), Candidate(2, START - timedelta(days=5), True, True)]
    assert plan(backups, Keep(daily=2), UTC_ZONE).keep == [1, 2]


def test_days_are_counted_in_the_policys_zone():
    seoul = ZoneInfo("Asia/Seoul")
    late = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # 01:00 on 3 December in Seoul
    early = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)  # 23:00 on 2 December in Seoul
    backups = [Candidate(1, late, True, True), Candidate(2, early, True, True)]
    assert plan(backups, Keep(daily=1), seoul).keep == [1]
    assert plan(backups, Keep(daily=1), UTC_ZONE).keep == [1], "one UTC day: only the newest"
    assert plan(backups, Keep(daily=2), seoul).keep == [1, 2], "two Seoul days"


candidates = st.lists(
    st.builds(
        Candidate,
        id=st.integers(1, 10_000),
        created_at=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)).map(
            lambda d: d.replace(tzinfo=UTC)
        ),
        completed=st.booleans(),
        own=st.booleans(),
        pinned=st.booleans(),
    ),
    max_size=14,
    unique_by=lambda c: c.id,
)
keeps = st.one_of(
    st.builds(Keep, last=st.integers(1, 9)),
    st.builds(Keep, daily=st.integers(0, 7), weekly=st.integers(0, 4), monthly=st.integers(0, 3)),
)


@settings(max_examples=400, deadline=None)
@given(backups=candidates, rule=keeps, zone_name=st.sampled_from(["UTC", "Europe/Berlin", "Australia/Lord_Howe"]))
def test_whatever_the_backups_and_rule_retention_touches_only_its_own(backups, rule, zone_name):
    result = plan(backups, rule, ZoneInfo(zone_name))
    by_id = {b.id: b for b in backups}
    touched = result.delete + result.later
    assert len(result.delete) <= MAX_DELETIONS
    assert all(by_id[i].own and not by_id[i].pinned for i in touched), "only its own, never pinned"
    assert not set(touched) & set(result.keep)
    done = [b for b in backups if b.own and not b.pinned and b.completed]
    if done:
        assert result.keep, "never fewer than one completed backup of its own"
        assert max(done, key=lambda b: (b.created_at, b.id)).id in result.keep, "the newest is always kept"
    assert all(by_id[i].completed for i in result.keep)
    failed = [b.id for b in backups if b.own and not b.pinned and not b.completed]
    assert set(failed) <= set(touched), "failed backups of its own are deleted"
    assert len(result.keep) <= max(rule.most, 1)
    if rule.last:
        newest = sorted(done, key=lambda b: (b.created_at, b.id), reverse=True)[: rule.last]
        assert result.keep == [b.id for b in newest]
    assert set(result.keep) | set(touched) == {b.id for b in backups if b.own and not b.pinned}
