"""Watching: is every server backed up? Freshness, alerts that heal themselves, and the digest.

A server is fresh while its newest *completed* backup (automatic ones count) is younger than its
threshold (BACKUPBOT_STALE_HOURS, or its own from `/backup policy SERVER stale HOURS`), due in the last
quarter of it, stale past it (also with no completed backup at all). The bot watches every server it
knows: named by the API, granted, bound to channels, or given a threshold.

The background loop's watch round (`watch_round`, the poller lease's holder only) lists every backup in
one call and keeps the alerts: one open alert per server and kind at a time (`alerts.open_key` is unique),
opened by one statement, so several bots open it once. A server turning stale, a backup ending in any state
but completed (within a day: older failures are remembered without an alert, so a first start does not
replay history), a backup in progress longer than 6 hours: each opens one. An open stale alert is
reminded at most every 12 hours; each alert heals by itself — a fresh backup, a newer completed one, the
stuck backup ending — and its card is then edited in place (bot/slack/reports.py).

A digest (`/backup digest #channel daily HH:MM [ZONE]`) is a row per channel with its schedule
(bot/schedule.py); `due_digests` claims a digest's latest slot once (several bots send it once) and
gathers what it shows. A slot missed while the bot was down is sent once when it comes back, marked late.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from bot.backup_api import Backup
from bot.ops.admin import CanPost
from bot.ops.core import Actor, Core
from bot.ops.errors import BadSchedule, ChannelUnusable, PermissionDenied
from bot.ops.timetable import upcoming
from bot.parsing import STALE_LIMITS
from bot.policy import Action
from bot.schedule import DAYS, Schedule, ScheduleError, clock_time, previous_slot
from bot.store import Alert, AlertKind, Digest

DUE_FRACTION = 0.75  # a server is due in the last quarter of its threshold
STUCK_AFTER = timedelta(hours=6)
REMIND_EVERY = timedelta(hours=12)
RECENT_FAILURE = timedelta(hours=24)
LATE_AFTER = timedelta(minutes=2)  # a digest sent this long after its time says it is late
EXPIRING_WITHIN = timedelta(days=1)


class Freshness(StrEnum):
    FRESH = "fresh"
    DUE = "due"
    STALE = "stale"


def freshness(newest: datetime | None, now: datetime, hours: float) -> Freshness:
    """Fresh, due (the last quarter of the threshold) or stale (past it, or no completed backup at all)."""
    if newest is None:
        return Freshness.STALE
    age = (now - newest).total_seconds() / 3600
    if age >= hours:
        return Freshness.STALE
    return Freshness.DUE if age >= hours * DUE_FRACTION else Freshness.FRESH


@dataclass(frozen=True)
class ServerStatus:
    """Where one server's backups stand."""

    server_id: int
    name: str | None
    state: Freshness
    threshold_hours: float
    newest: Backup | None  # its newest completed backup
    manual_used: int
    running: list[Backup]
    alerts: list[Alert]
    next_run: datetime | None = None  # its policy's next run, once it has one


@dataclass(frozen=True)
class AlertChange:
    """An alert opened, reminded of, or recovered: what the team must hear (once, from one bot)."""

    alert: Alert
    event: str  # opened, reminded, recovered
    name: str | None = None


@dataclass(frozen=True)
class DigestReport:
    """One digest, due now: the servers as they stand, what happened since the last, and whether it is late."""

    digest: Digest
    slot: datetime
    since: datetime | None
    late: bool
    servers: list[ServerStatus]
    happened: list[Alert]
    expiring: list[Backup]


def newest_completed(backups: list[Backup]) -> Backup | None:
    done = [b for b in backups if b.is_restorable]
    return max(done, key=lambda b: (b.created_at, b.id), default=None)


def digest_schedule(digest: Digest) -> Schedule:
    return Schedule(digest.cadence, clock_time(digest.at_time), digest.zone, days=digest.days)


class Watching(Core):
    """Freshness, alerts, status and digests."""

    def backup_ages(self) -> dict[int, float]:
        """Each server's newest completed backup's age in seconds, as the last watch round saw it (for /metrics)."""
        now = self._clock()
        return {
            sid: (now - s.newest.created_at).total_seconds()
            for sid, s in self.freshness_seen.items()
            if s.newest is not None
        }

    def threshold(self, server_id: int, own: dict[int, float]) -> float:
        return own.get(server_id, self.stale_hours)

    def _status_of(
        self, server_id: int, name: str | None, backups: list[Backup], own: dict[int, float], alerts: list[Alert]
    ) -> ServerStatus:
        hours = self.threshold(server_id, own)
        newest = newest_completed(backups)
        state = freshness(newest.created_at if newest else None, self._clock(), hours)
        return ServerStatus(
            server_id,
            name or (backups[0].server.name if backups else None),
            state,
            hours,
            newest,
            sum(b.backup_type == "manual" for b in backups),
            [b for b in backups if b.is_running],
            [a for a in alerts if a.server_id == server_id],
        )

    async def status(self, actor: Actor, server_id: int | None = None) -> list[ServerStatus]:
        """Each server the person may see (or one), as it stands: one list call for them all."""
        admin = await self.is_admin(actor)
        if server_id is not None:
            await self._authorize(actor, Action.STATUS, server_id, admin=admin)
            servers = [server_id]
            backups = await self._api(actor, Action.STATUS, self.api.list_backups(server_id), server_id=server_id)
        elif admin:
            backups = await self._api(actor, Action.STATUS, self.api.list_backups())
            servers = sorted({*(await self._db(self.store.known_servers)), *(b.server.id for b in backups)})
        else:
            grants = await self._db(self.store.grants, actor.user_id)
            servers = sorted(g.server_id for g in grants)
            per_server = await self._api(
                actor, Action.STATUS, asyncio.gather(*(self.api.list_backups(sid) for sid in servers))
            )
            backups = [b for chunk in per_server for b in chunk]
        await self._learn(backups)
        statuses = await self._statuses(servers, backups)
        stale = sum(s.state is Freshness.STALE for s in statuses)
        await self._audit(
            actor, Action.STATUS, "done", server_id=server_id, detail=f"{len(statuses)} servers, {stale} stale"
        )
        return statuses

    async def _statuses(self, servers: list[int], backups: list[Backup]) -> list[ServerStatus]:
        names = await self._db(self.store.known_servers)
        own = await self._db(self.store.stale_hours)
        alerts = await self._db(self.store.open_alerts)
        policies = {p.server_id: p for p in await self._db(self.store.policies)}
        by_server: dict[int, list[Backup]] = {sid: [] for sid in servers}
        for backup in backups:
            if backup.server.id in by_server:
                by_server[backup.server.id].append(backup)
        statuses = [self._status_of(sid, names.get(sid), by_server[sid], own, alerts) for sid in servers]
        now = self._clock()
        return [
            dataclasses.replace(s, next_run=next(iter(upcoming(policies.get(s.server_id), now, 1)), None))
            for s in statuses
        ]

    # --- the watch round (the background loop's) ---------------------------------------------------

    async def watch_round(self) -> list[AlertChange]:
        """List every backup once; open, remind of and heal alerts. Each change reaches the one bot that made it."""
        backups = await self.api.list_backups()
        await self._learn(backups)
        known = await self._db(self.store.known_servers)
        servers = sorted({*known, *(b.server.id for b in backups)})
        statuses = await self._statuses(servers, backups)
        self.freshness_seen = {s.server_id: s for s in statuses}
        followed = {f.backup_id for f in await self._db(self.store.following)}  # the follower tells of those
        changes: list[AlertChange] = []
        for status in statuses:
            mine = [b for b in backups if b.server.id == status.server_id and b.id not in followed]
            changes += await self._watch_stale(status)
            changes += await self._watch_failed(status, mine)
            changes += await self._watch_stuck(status, mine)
        return changes

    async def _open(
        self, status: ServerStatus, kind: AlertKind, subject: Backup | None, facts: dict
    ) -> list[AlertChange]:
        alert = await self._db(
            self.store.open_alert, status.server_id, kind.value, subject.id if subject else None, facts
        )
        return [AlertChange(alert, "opened", status.name)] if alert else []

    async def _recover(self, status: ServerStatus, alert: Alert, recovery: dict) -> list[AlertChange]:
        healed = await self._db(self.store.recover_alert, alert.id, recovery)
        return [AlertChange(healed, "recovered", status.name)] if healed else []

    async def _watch_stale(self, status: ServerStatus) -> list[AlertChange]:
        open_ = next((a for a in status.alerts if a.kind is AlertKind.STALE), None)
        if status.state is Freshness.STALE:
            if open_ is None:
                return await self._open(status, AlertKind.STALE, status.newest, self._facts(status))
            if await self._db(self.store.remind_alert, open_.id, REMIND_EVERY.total_seconds()):
                return [AlertChange(await self._db(self.store.alert, open_.id), "reminded", status.name)]
            return []
        if open_ is not None:
            return await self._recover(status, open_, _backup_facts(status.newest))
        return []

    async def _watch_failed(self, status: ServerStatus, backups: list[Backup]) -> list[AlertChange]:
        changes: list[AlertChange] = []
        now = self._clock()
        for backup in sorted(backups, key=lambda b: (b.created_at, b.id)):
            if backup.is_running or backup.is_restorable:
                continue
            if await self._db(self.store.notice, backup.id) and now - backup.created_at <= RECENT_FAILURE:
                facts = {**_backup_facts(backup), "status": backup.status}
                changes += await self._open(status, AlertKind.FAILED, backup, facts)
        open_ = next((a for a in status.alerts if a.kind is AlertKind.FAILED), None)
        healed = status.newest
        if open_ is not None and healed is not None and healed.created_at.timestamp() > open_.facts.get("at", 0):
            changes += await self._recover(status, open_, _backup_facts(healed))
        return changes

    async def _watch_stuck(self, status: ServerStatus, backups: list[Backup]) -> list[AlertChange]:
        now = self._clock()
        open_ = next((a for a in status.alerts if a.kind is AlertKind.STUCK), None)
        stuck = [b for b in status.running if now - b.created_at > STUCK_AFTER]
        if open_ is None and stuck:
            return await self._open(status, AlertKind.STUCK, stuck[0], _backup_facts(stuck[0]))
        if open_ is not None and not any(b.id == open_.subject_id for b in stuck):
            ended = next((b for b in backups if b.id == open_.subject_id), None)
            recovery = {**_backup_facts(ended), "status": ended.status} if ended else {"gone": True}
            return await self._recover(status, open_, recovery)
        return []

    async def backup_failed(self, backup: Backup, asked_by: str) -> AlertChange | None:
        """A followed backup someone asked for ended badly: its alert, told once (the watch round will not
        open another for it), naming who asked."""
        if not await self._db(self.store.notice, backup.id):
            return None
        facts = {**_backup_facts(backup), "status": backup.status, "asked_by": asked_by}
        alert = await self._db(self.store.open_alert, backup.server.id, AlertKind.FAILED.value, backup.id, facts)
        return AlertChange(alert, "opened", backup.server.name) if alert else None

    def _facts(self, status: ServerStatus) -> dict:
        return {**_backup_facts(status.newest), "hours": status.threshold_hours}

    # --- thresholds --------------------------------------------------------------------------------

    async def set_stale_hours(self, actor: Actor, server_id: int, hours: float) -> float | None:
        """A server's own freshness threshold (owner of the server, or admin); returns the one it had."""
        await self._authorize(actor, Action.POLICY, server_id)
        low, high = STALE_LIMITS
        if not low <= hours <= high:
            await self._audit(
                actor, Action.POLICY, "failed", server_id=server_id, detail=f"stale {hours:g}: out of bounds"
            )
            raise BadSchedule("stale", f"{hours:g}")
        before = await self._db(self.store.set_stale_hours, server_id, hours, actor.user_id)
        was = f"{before:g}" if before is not None else f"the default {self.stale_hours:g}"
        await self._audit(
            actor, Action.POLICY, "done", server_id=server_id, detail=f"stale after {hours:g} hours (was {was})"
        )
        return before

    # --- digests ------------------------------------------------------------------------------------

    async def digests(self, actor: Actor) -> list[Digest]:
        await self._authorize(actor, Action.DIGEST, None)
        return await self._db(self.store.digests)

    async def set_digest(
        self, actor: Actor, channel: str, schedule: Schedule | None, *, can_post: CanPost | None = None
    ) -> bool:
        """A channel's digest (admin): set (once the bot could post there), or stopped (`None`); True if it changed."""
        if not await self.is_admin(actor):
            await self._audit(actor, Action.DIGEST, "denied", detail=f"digest in {channel}: needs admin")
            raise PermissionDenied(Action.DIGEST, None, "admin")
        if schedule is None:
            removed = await self._db(self.store.remove_digest, channel)
            await self._audit(
                actor,
                Action.DIGEST,
                "done",
                detail=f"digest in {channel} off" + ("" if removed else " (there was none)"),
            )
            return removed
        problem = await can_post(channel, 0) if can_post is not None else None
        if problem is not None:
            await self._audit(
                actor,
                Action.DIGEST,
                "failed",
                detail=f"digest in {channel}: could not post there ({problem.english()})",
            )
            raise ChannelUnusable(None, channel, problem)  # no server: the digest was not set
        await self._db(
            self.store.set_digest,
            channel,
            cadence=schedule.cadence,
            days=schedule.days,
            at_time=schedule.at.strftime("%H:%M"),
            zone=schedule.zone_name,
            set_by=actor.user_id,
        )
        await self._audit(actor, Action.DIGEST, "done", detail=f"digest in {channel}: {schedule.words()}")
        return True

    async def due_digests(self) -> list[DigestReport]:
        """Digests whose latest slot has come and not been sent: each claimed once, and gathered."""
        now = self._clock()
        due = []
        for digest in await self._db(self.store.digests):
            try:
                schedule = digest_schedule(digest)
            except (ScheduleError, ValueError):
                continue
            anchor = datetime.fromtimestamp(digest.set_at, UTC)
            slot = previous_slot(schedule, now, anchor=anchor)
            if slot is None or (digest.last_slot is not None and slot.timestamp() <= digest.last_slot):
                continue
            if await self._db(self.store.claim_digest_slot, digest.channel, slot.timestamp()):
                due.append((digest, slot))
        if not due:
            return []
        backups = await self.api.list_backups()
        await self._learn(backups)
        servers = sorted({*(await self._db(self.store.known_servers)), *(b.server.id for b in backups)})
        statuses = await self._statuses(servers, backups)
        expiring = [b for b in backups if b.expires_at is not None and now <= b.expires_at <= now + EXPIRING_WITHIN]
        reports = []
        for digest, slot in due:
            since = datetime.fromtimestamp(digest.last_slot, UTC) if digest.last_slot else None
            happened = await self._db(self.store.alerts_since, (since or now - timedelta(days=1)).timestamp())
            late = now - slot > LATE_AFTER
            reports.append(DigestReport(digest, slot, since, late, statuses, happened, expiring))
        return reports


def _backup_facts(backup: Backup | None) -> dict:
    if backup is None:
        return {}
    return {"id": backup.id, "type": backup.backup_type, "at": backup.created_at.timestamp()}


def parse_days(text: str) -> tuple[int, ...]:
    """`mon,thu` → (0, 3)."""
    days = []
    for word in text.lower().split(","):
        if word not in DAYS:
            raise ScheduleError(f"{word!r} is not a day: use mon, tue, wed, thu, fri, sat, sun")
        days.append(DAYS.index(word))
    return tuple(sorted(set(days)))
