"""Time, in one place: every part that needs "now" takes a `Clock`, so tests can hold time still."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_seconds(moment: datetime) -> str:
    """A moment as the store keeps it: ISO 8601 in UTC, to the second."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")
