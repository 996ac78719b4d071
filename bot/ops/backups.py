"""Reading and creating: list, servers, the audit log, create (and a create refused at the 10-backup limit)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from bot.backup_api import Backup, BadRequest
from bot.clock import iso_seconds
from bot.ops.core import Accepted, Actor, Core, ReplyTo
from bot.ops.errors import MayHaveHappened
from bot.ops.writes import Write, WriteKind
from bot.policy import Action, Role
from bot.store import AuditEntry, AuditSearch, StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listing:
    backups: list[Backup]
    server_id: int | None
    backup_type: str | None
    is_admin: bool
    roles: dict[int, Role] = field(default_factory=dict)

    def role_on(self, server_id: int) -> Role | None:
        return self.roles.get(server_id)


@dataclass(frozen=True)
class ServerAccess:
    server_id: int
    name: str | None
    role: str
    approvals: bool = False


class Backups(Core):
    """List, servers, audit log, create."""

    async def standing(self, actor: Actor) -> tuple[bool, Role | None]:
        """Whether the person is an admin, and their highest role on any server (for help that fits them)."""
        if await self.is_admin(actor):
            return True, None
        grants = await self._db(self.store.grants, actor.user_id)
        return False, max((g.role for g in grants), default=None)

    async def list_backups(self, actor: Actor, server_id: int | None = None, backup_type: str | None = None) -> Listing:
        admin = await self.is_admin(actor)
        if server_id is not None:
            role = await self._authorize(actor, Action.LIST, server_id, admin=admin)
            backups = await self._api(
                actor, Action.LIST, self.api.list_backups(server_id, backup_type), server_id=server_id
            )
            roles = {server_id: role} if role else {}
        elif admin:
            backups = await self._api(actor, Action.LIST, self.api.list_backups(None, backup_type))
            roles = {}
        else:
            grants = await self._db(self.store.grants, actor.user_id)
            roles = {g.server_id: g.role for g in grants}
            calls = [self.api.list_backups(sid, backup_type) for sid in roles]
            per_server = await self._api(actor, Action.LIST, asyncio.gather(*calls))
            backups = [b for chunk in per_server for b in chunk]
        backups.sort(key=lambda b: (b.created_at, b.id), reverse=True)
        names = self._learn_soon(backups)  # in the transaction of the audit entry, when writes are grouped
        await self._audit(actor, Action.LIST, "done", server_id=server_id, detail=f"{len(backups)} backups")
        if names is not None:  # written by now when grouped; else (writes one by one) wait for them as before
            with contextlib.suppress(StoreUnavailable):
                await names
        return Listing(backups, server_id, backup_type, admin, roles)

    async def servers(self, actor: Actor) -> list[ServerAccess]:
        if await self.is_admin(actor):
            backups = await self._api(actor, Action.SERVERS, self.api.list_backups())
            await self._learn(backups)
            names = await self._db(self.store.server_names)
            rules = await self._db(self.store.approval_rules)
            access = [ServerAccess(sid, name, "admin", sid in rules) for sid, name in sorted(names.items())]
        else:
            names = await self._db(self.store.server_names)
            grants = await self._db(self.store.grants, actor.user_id)
            rules = await self._db(self.store.approval_rules)
            access = [
                ServerAccess(g.server_id, names.get(g.server_id), g.role.label, g.server_id in rules) for g in grants
            ]
        await self._audit(actor, Action.SERVERS, "done", detail=f"{len(access)} servers")
        return access

    async def audit_log(self, actor: Actor, limit: int = 20, search: AuditSearch | None = None) -> list[AuditEntry]:
        await self._authorize(actor, Action.AUDIT, None)
        entries = await self._db(self.store.audit_entries, limit, search)
        filters = f" where {search.words()}" if search and search.words() else ""
        await self._audit(actor, Action.AUDIT, "done", detail=f"last {limit}{filters}")
        return entries

    async def create_backup(
        self,
        actor: Actor,
        server_id: int,
        description: str = "",
        *,
        follow: ReplyTo | None = None,
        path: str = "direct",
    ) -> Backup | Accepted:
        """A manual backup, followed to completion when `follow` says where to tell of it.

        Not done at the 10-backup limit: NoRoom names the oldest manual backup. Unknown: MayHaveHappened.
        """
        await self._authorize(actor, Action.CREATE, server_id)
        await self._from_its_channel(actor, Action.CREATE, server_id)
        return await self._create(actor, server_id, description, follow=follow, path=path)

    async def _create(
        self,
        actor: Actor,
        server_id: int,
        description: str,
        *,
        follow: ReplyTo | None,
        path: str,
        ref: str | None = None,
    ) -> Backup | Accepted:
        """The create itself, once the actor may: sent, audited, and followed (see `create_backup`)."""
        write = Write(WriteKind.CREATE, server_id, description=description, path=path, ref=ref)
        sent = await self.send_write(actor, write, context=description, reply_to=follow)
        if sent.unknown:
            raise MayHaveHappened(sent)
        if not sent.done:
            if isinstance(sent.error, BadRequest):
                await self._no_room_or(sent.error, actor, server_id, description)
            raise sent.error
        if sent.backup is None:
            log.warning("create on server %s: %s", server_id, sent.error)
            return Accepted(server_id, description, str(sent.error))
        await self.follow(actor, sent.backup, follow)
        return sent.backup

    async def follow(self, actor: Actor, backup: Backup, reply_to: ReplyTo | None) -> None:
        """Follow a created backup to its end, telling `reply_to` (kept until the store takes it)."""
        if reply_to is None or not backup.is_running:
            return
        await self.durable.write(
            "followed backup",
            self.store.follow,
            backup_id=backup.id,
            server_id=backup.server.id,
            requested_by=actor.user_id,
            channel_id=reply_to.channel_id,
            response_url=reply_to.response_url,
            description=backup.description,
            started_at=iso_seconds(self._clock()),
        )
