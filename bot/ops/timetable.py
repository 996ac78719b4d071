"""When a policy runs, and what it keeps: its schedule and retention rule read from its record (pure).

Shared by the policies themselves (bot/ops/policies.py) and by what shows a policy's next run next to a
server's freshness (status, the Home tab, digests), which must not import each other.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.retention import DEFAULT_KEEP_LAST, Keep
from bot.schedule import Schedule, clock_time, next_slots

START_WINDOW = timedelta(hours=1)


def schedule_of(policy) -> Schedule:
    return Schedule(policy.cadence, clock_time(policy.at_time), policy.zone, policy.days, policy.every_hours)


def keep_of(policy) -> Keep:
    """The policy's keep; one set without a keep keeps the last 3."""
    keep = Keep(policy.keep_last, policy.keep_daily, policy.keep_weekly, policy.keep_monthly)
    return keep if keep.most else Keep(last=DEFAULT_KEEP_LAST)


def anchor_of(policy) -> datetime:
    """When its schedule was set: slots before it are not runs (neither run nor missed)."""
    return datetime.fromtimestamp(policy.set_at, UTC)


def start_window(schedule: Schedule) -> timedelta:
    """How late a slot may still run after downtime: an hour, or the period if shorter."""
    return min(START_WINDOW, schedule.period)


def upcoming(policy, now: datetime, count: int = 5) -> list[datetime]:
    """The policy's next runs after `now` (none when it is off; after its pause when paused)."""
    if policy is None or policy.state == "off":
        return []
    after = now
    if policy.state == "paused" and policy.paused_until:
        after = max(now, datetime.fromtimestamp(policy.paused_until, UTC))
    return next_slots(schedule_of(policy), after, count, anchor=anchor_of(policy))
