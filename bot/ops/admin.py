"""Who may do what where, and how the bot speaks to them: grants, admins, channels, languages (admin work)."""

from __future__ import annotations

from bot.ops.core import Actor, Core
from bot.ops.errors import PermissionDenied
from bot.policy import Action, Role


class Admin(Core):
    """Grants, admins, channels, languages."""

    async def grant(self, actor: Actor, user_id: str, server_id: int, role: Role) -> None:
        await self._authorize(actor, Action.GRANT, None)
        await self._db(self.store.grant, user_id, server_id, role, actor.user_id)
        await self._audit(actor, Action.GRANT, "done", server_id=server_id, detail=f"{user_id} is {role.label}")

    async def revoke(self, actor: Actor, user_id: str, server_id: int) -> bool:
        await self._authorize(actor, Action.REVOKE, None)
        removed = await self._db(self.store.revoke, user_id, server_id)
        detail = f"{user_id} {'lost their role' if removed else 'had no role'}"
        await self._audit(actor, Action.REVOKE, "done", server_id=server_id, detail=detail)
        return removed

    async def set_admin(self, actor: Actor, user_id: str, *, admin: bool) -> bool:
        """Add or remove an admin kept in the store; True if that changed anything."""
        await self._authorize(actor, Action.ADMIN, None)
        if admin:
            changed = not await self._db(self.store.is_admin, user_id)
            await self._db(self.store.add_admin, user_id, actor.user_id)
        else:
            changed = await self._db(self.store.remove_admin, user_id)
        verb = "added" if admin else "removed"
        await self._audit(
            actor, Action.ADMIN, "done", detail=f"{user_id} {verb}" if changed else f"{user_id} unchanged"
        )
        return changed

    async def channels(self, actor: Actor, server_id: int) -> list[str]:
        """A server's channels; anyone who may see the server may ask."""
        await self._authorize(actor, Action.CHANNELS, server_id)
        channels = await self._db(self.store.channels_of, server_id)
        await self._audit(actor, Action.CHANNELS, "done", server_id=server_id, detail=f"{len(channels)} channels")
        return channels

    async def bind_channel(self, actor: Actor, server_id: int, channel_id: str, *, bound: bool) -> bool:
        """Bind a server to a channel, or unbind it (admin); True if that changed anything."""
        if not await self.is_admin(actor):
            await self._audit(actor, Action.CHANNELS, "denied", server_id=server_id, detail="needs admin")
            raise PermissionDenied(Action.CHANNELS, None, "admin")
        changed = await self._db(self.store.bind_channel, server_id, channel_id, actor.user_id, bound=bound)
        verb = "bound to" if bound else "unbound from"
        detail = f"{verb} {channel_id}" + ("" if changed else " (unchanged)")
        await self._audit(actor, Action.CHANNELS, "done", server_id=server_id, detail=detail)
        return changed

    async def set_language(self, actor: Actor, language: str) -> bool:
        changed = await self._db(self.store.set_language, actor.user_id, language)
        await self._audit(
            actor, Action.LANGUAGE, "done", detail=f"language {language}" + ("" if changed else " (unchanged)")
        )
        return changed
