"""Who may do what where, and how the bot speaks to them: grants, admins, channels, languages (admin work)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.i18n import N_, Words
from bot.ops.core import Actor, Core
from bot.ops.errors import ChannelUnusable, PermissionDenied
from bot.policy import Action, Role

# Can the bot post in this channel (it posts there that the channel now carries the server's news)?
# None if it could; else why not, in words for people. Given by the edge that has a Slack client.
CanPost = Callable[[str, int], Awaitable[Words | None]]


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

    async def bind_channel(
        self, actor: Actor, server_id: int, channel_id: str, *, bound: bool, can_post: CanPost | None = None
    ) -> bool:
        """Bind a server to a channel, or unbind it (admin); True if that changed anything.

        A channel is bound only once the bot could post there that it now carries the server's news
        (`can_post`, from the edge: Slack's own answer); if it could not, nothing is bound and the
        attempt is audited failed with why.
        """
        if not await self.is_admin(actor):
            await self._audit(actor, Action.CHANNELS, "denied", server_id=server_id, detail="needs admin")
            raise PermissionDenied(Action.CHANNELS, None, "admin")
        if bound and channel_id not in await self._db(self.store.channels_of, server_id):
            problem = await can_post(channel_id, server_id) if can_post is not None else None
            if can_post is None or problem is not None:
                why = problem if problem is not None else Words(N_("there is no way to check the channel from here"))
                detail = f"not bound to {channel_id}: could not post there ({why.english()})"
                await self._audit(actor, Action.CHANNELS, "failed", server_id=server_id, detail=detail)
                raise ChannelUnusable(server_id, channel_id, why)
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
