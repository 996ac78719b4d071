"""Room at the limit: a create refused because the server keeps 10 manual backups names the oldest one,
and an owner may have it deleted (confirmed by name, no undo window) and the new backup created.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.backup_api import MANUAL_LIMIT, Backup, BackupApiError, BadRequest
from bot.ops.core import Accepted, Actor, Core, ReplyTo
from bot.ops.errors import BackupNotFound, NoRoom, OpsError, RuledServer
from bot.ops.writes import Write, WriteKind
from bot.policy import Action, is_allowed
from bot.store import Confirmation

PURPOSE_MAKE_ROOM = "make_room"  # a confirmation's purpose: delete the oldest manual backup, then create


@dataclass(frozen=True)
class RoomMade:
    """The oldest manual backup deleted to make room, and the new backup (or why it was not created)."""

    confirmation: Confirmation
    created: Backup | Accepted | None
    error: Exception | None = None


class Room(Core):
    """Making room at the 10-backup limit."""

    async def _room(self, server_id: int) -> tuple[int, Backup | None]:
        """How many manual backups the server keeps, and the oldest of them."""
        manual = await self.api.list_backups(server_id, "manual")
        oldest = min(manual, key=lambda b: (b.created_at, b.id), default=None)
        return len(manual), oldest

    async def _no_room_or(self, refusal: BadRequest, actor: Actor, server_id: int, description: str) -> None:
        """Raise NoRoom if a refused create met the 10-backup limit; else return (the refusal stands)."""
        try:
            count, oldest = await self._room(server_id)
        except BackupApiError:
            return
        if count < MANUAL_LIMIT:
            return
        admin = await self.is_admin(actor)
        role = await self._db(self.store.role_of, actor.user_id, server_id)
        raise NoRoom(
            server_id,
            count,
            oldest,
            description=description,
            may_make_room=is_allowed(Action.DELETE, is_admin=admin, role=role),
            ruled=await self.needs_approval(server_id),
            provider_message=refusal.provider_message,
        ) from refusal

    async def request_make_room(self, actor: Actor, server_id: int, backup_id: int, description: str) -> Confirmation:
        """Ask to confirm deleting the oldest manual backup (by name) and then creating the new one."""
        backup = await self._find(actor, Action.DELETE, backup_id)
        if backup.server.id != server_id or backup.backup_type != "manual":
            raise BackupNotFound(backup_id)
        await self._authorize_on_backup(actor, Action.DELETE, backup)
        await self._authorize(actor, Action.CREATE, server_id, backup_id=backup_id)
        await self._from_its_channel(actor, Action.DELETE, server_id, backup_id=backup_id)
        await self._not_ruled(actor, server_id, backup_id)
        return await self._confirmation(
            Action.DELETE,
            backup,
            server_id,
            backup.server.name,
            actor,
            purpose=PURPOSE_MAKE_ROOM,
            description=description[:255],
        )

    async def _not_ruled(self, actor: Actor, server_id: int, backup_id: int) -> None:
        if await self.needs_approval(server_id):
            await self._audit(
                actor,
                Action.DELETE,
                "denied",
                server_id=server_id,
                backup_id=backup_id,
                detail="making room needs the two-person rule's approval: delete first, then create",
            )
            raise RuledServer(server_id)

    async def confirm_make_room(self, actor: Actor, token: str, *, reply_to: ReplyTo | None = None) -> RoomMade:
        """Delete the confirmed backup at once (it was confirmed by name: no undo window), then create.

        If the delete fails, nothing is created; if the create fails, the delete still happened and
        the result says both.
        """
        conf = await self.authorize_confirmation(actor, token, Action.DELETE)
        if conf.purpose != PURPOSE_MAKE_ROOM:
            await self._refused(actor, Action.DELETE, None)
        await self._authorize(actor, Action.CREATE, conf.server_id, backup_id=conf.backup_id)
        await self._not_ruled(actor, conf.server_id, conf.backup_id)
        await self._still_there(actor, Action.DELETE, conf)
        await self._claim(conf, actor, Action.DELETE)
        write = Write(WriteKind.DELETE, conf.server_id, conf.backup_id, path="room", ref=conf.id)
        await self._send_confirmed(actor, conf, write, "the oldest manual backup, to make room", reply_to)
        try:
            created = await self.create_backup(actor, conf.server_id, conf.description, follow=reply_to, path="room")
        except (BackupApiError, OpsError) as exc:
            return RoomMade(conf, None, exc)
        return RoomMade(conf, created)
