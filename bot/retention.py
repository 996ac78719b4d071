"""What a policy's retention keeps and deletes. Pure: no I/O, no clock.

Only a policy's own backups are ever candidates (those whose description carries one of its run tags);
pinned ones are outside the count and never deleted; other manual backups and automatic ones are never
touched. Failed own backups count for nothing and are deleted. Of the completed own backups:

- `keep last N` keeps the newest N;
- `keep daily D weekly W monthly M` keeps the newest backup of each of the last D local days, W ISO weeks
  and M months that have one (in the policy's zone), the way Proxmox Backup Server's prune does: the
  options are applied in that order; only periods that have a backup count (a gap of two days does not
  use up two of D); and a period that already holds a kept backup (a week whose Sunday was kept as a day)
  is not counted again, so the weekly ones reach further back.

Whatever the rule, at least one completed own backup is kept, and one prune deletes at most
`MAX_DELETIONS` backups (failed ones first, then the oldest).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

MAX_DELETIONS = 3
DEFAULT_KEEP_LAST = 3


@dataclass(frozen=True)
class Keep:
    """A retention rule: `last` (keep the newest N), or `daily`/`weekly`/`monthly` counts (0: none)."""

    last: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0

    @property
    def by_period(self) -> bool:
        return not self.last and bool(self.daily or self.weekly or self.monthly)

    @property
    def most(self) -> int:
        """The most completed backups this rule keeps (what it needs of the 10 manual slots)."""
        return self.last if self.last else self.daily + self.weekly + self.monthly

    def words(self) -> str:
        if self.last:
            return f"keep last {self.last}"
        return f"keep daily {self.daily} weekly {self.weekly} monthly {self.monthly}"


@dataclass(frozen=True)
class Candidate:
    """A backup as retention sees it."""

    id: int
    created_at: datetime
    completed: bool
    own: bool  # made by this policy (its run tag)
    pinned: bool = False


@dataclass(frozen=True)
class Prune:
    keep: list[int]  # own completed backups kept, newest first
    delete: list[int]  # to delete now, in order (at most MAX_DELETIONS)
    later: list[int]  # would be deleted, but past this prune's limit: the next prune takes them


def plan(backups: list[Candidate], rule: Keep, tz: ZoneInfo, *, max_deletions: int = MAX_DELETIONS) -> Prune:
    """Which of the policy's own backups to keep and which to delete (see the module docstring)."""
    own = [b for b in backups if b.own and not b.pinned]
    failed = sorted((b for b in own if not b.completed), key=lambda b: (b.created_at, b.id))
    done = sorted((b for b in own if b.completed), key=lambda b: (b.created_at, b.id), reverse=True)
    kept = _kept(done, rule, tz)
    if done and not kept:
        kept = {done[0].id}  # never fewer than one completed backup of its own
    doomed = [b.id for b in failed] + [b.id for b in reversed(done) if b.id not in kept]
    return Prune([b.id for b in done if b.id in kept], doomed[:max_deletions], doomed[max_deletions:])


def _kept(done: list[Candidate], rule: Keep, tz: ZoneInfo) -> set[int]:
    if not rule.by_period:
        return {b.id for b in done[: max(rule.last, 0)]}
    kept: set[int] = set()
    for count, period in ((rule.daily, _day), (rule.weekly, _week), (rule.monthly, _month)):
        covered = {period(b.created_at.astimezone(tz)) for b in done if b.id in kept}
        chosen: set[tuple] = set()
        for backup in done:  # newest first: the newest backup of each period stands for it
            if backup.id in kept:
                continue
            key = period(backup.created_at.astimezone(tz))
            if key in covered or key in chosen:
                continue
            if len(chosen) >= count:
                break
            chosen.add(key)
            kept.add(backup.id)
    return kept


def _day(moment: datetime) -> tuple:
    return (moment.year, moment.month, moment.day)


def _week(moment: datetime) -> tuple:
    year, week, _ = moment.isocalendar()
    return (year, week)


def _month(moment: datetime) -> tuple:
    return (moment.year, moment.month)
