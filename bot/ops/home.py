"""What a person's Home tab shows: their servers and where their backups stand, what waits for their decision."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from bot.backup_api import Backup, BackupApiError
from bot.ops.core import Actor, Core
from bot.ops.timetable import upcoming
from bot.ops.watching import freshness
from bot.policy import Action, Role, is_allowed
from bot.store import ApprovalRequest, AuditEntry


@dataclass(frozen=True)
class ServerSummary:
    """One server on a person's Home tab."""

    server_id: int
    name: str | None
    role: str
    approvals: bool
    newest: Backup | None = None
    in_progress: int = 0
    manual_used: int = 0
    may_create: bool = False
    state: str | None = None  # fresh, due or stale (bot/ops/watching.py); None when the API could not say
    alerts: int = 0  # open alerts
    next_run: datetime | None = None  # its backup policy's next run
    policy_state: str | None = None  # active, paused or off; None: no policy
    may_set_policy: bool = False


@dataclass(frozen=True)
class HomeView:
    """What a person's Home tab shows: their servers, what waits for their decision, their last actions."""

    user_id: str
    is_admin: bool
    servers: list[ServerSummary]
    waiting: list[ApprovalRequest]
    recent: list[AuditEntry]
    api_problem: str | None = None


class Home(Core):
    """The Home tab."""

    async def home(self, actor: Actor, recent: int = 5, *, audit: bool = True) -> HomeView:
        """A person's servers with where their backups stand; admins see every server the bot knows.

        One list call per server shown (concurrently), or one unfiltered call for an admin: nothing
        the person may not see is fetched for them. If the API fails, the servers still show.
        """
        admin = await self.is_admin(actor)
        rules = await self._db(self.store.approval_rules)
        names = await self._db(self.store.server_names)
        problem = None
        if admin:
            try:
                backups = await self.api.list_backups()
            except BackupApiError as exc:
                backups, problem = [], str(exc)
            await self._learn(backups)
            roles = {sid: "admin" for sid in {*names, *(b.server.id for b in backups)}}
        else:
            grants = await self._db(self.store.grants, actor.user_id)
            roles = {g.server_id: g.role.label for g in grants}
            results = await asyncio.gather(*(self.api.list_backups(sid) for sid in roles), return_exceptions=True)
            failures = [r for r in results if isinstance(r, BackupApiError)]
            problem = str(failures[0]) if failures else None
            backups = [b for r in results if isinstance(r, list) for b in r]
            await self._learn(backups)
        names = {**names, **{b.server.id: b.server.name for b in backups}}
        by_server: dict[int, list[Backup]] = {}
        for backup in backups:
            by_server.setdefault(backup.server.id, []).append(backup)
        own = await self._db(self.store.stale_hours)
        alerts = await self._db(self.store.open_alerts)
        policies = {p.server_id: p for p in await self._db(self.store.policies)}
        servers = []
        for sid in sorted(roles):
            mine = sorted(by_server.get(sid, []), key=lambda b: (b.created_at, b.id), reverse=True)
            role = None if roles[sid] == "admin" else Role.parse(roles[sid])
            done = next((b for b in mine if b.is_restorable), None)
            state = (
                None
                if problem
                else freshness(done.created_at if done else None, self._clock(), own.get(sid, self.stale_hours))
            )
            servers.append(
                ServerSummary(
                    sid,
                    names.get(sid),
                    roles[sid],
                    sid in rules,
                    mine[0] if mine else None,
                    sum(b.is_running for b in mine),
                    sum(b.backup_type == "manual" for b in mine),
                    is_allowed(Action.CREATE, is_admin=admin, role=role),
                    state.value if state else None,
                    sum(a.server_id == sid for a in alerts),
                    next(iter(upcoming(policies.get(sid), self._clock(), 1)), None),
                    policies[sid].state if sid in policies else None,
                    is_allowed(Action.POLICY, is_admin=admin, role=role),
                )
            )
        waiting = [
            r for r in await self._db(self.store.pending_approvals) if await self._may_decide_quietly(actor, r, admin)
        ]
        entries = await self._db(self.store.audit_entries_of, actor.user_id, recent)
        if audit:  # a refresh after the person's own change is the bot's doing, not an attempt of theirs
            await self._audit(actor, Action.LIST, "done", detail=f"home tab: {len(servers)} servers")
        return HomeView(actor.user_id, admin, servers, waiting, entries, problem)

    async def _may_decide_quietly(self, actor: Actor, request: ApprovalRequest, admin: bool) -> bool:
        """Could this person decide on the request? (For showing it; the press checks again, and audits.)"""
        if actor.user_id == request.requested_by or request.expires_at <= self._clock().timestamp():
            return False
        if admin:
            return True
        for server_id in request.servers:
            role = await self._db(self.store.role_of, actor.user_id, server_id)
            if not is_allowed(Action.APPROVE, is_admin=False, role=role):
                return False
        return True
