"""The undo window for deletes: a confirmed delete waits in the store (`delete_windows`) with an Undo
button, and the background loop sends it once its window has ended.

The window closes at the time the reply named: an Undo pressed after it is refused even if the loop has
not sent the DELETE yet. Deletes due together are sent concurrently (at most SEND_AT_ONCE at a time), so
each goes out within seconds of its time. A window whose sender died is claimed again once its claim
lapses, and what happened to it is read from its write's record: never sent, it is sent now; sent, it is
settled by looking (the backup gone: deleted; still there: not deleted); never twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from bot.ops.core import Actor, Core
from bot.ops.errors import PermissionDenied, UndoUnavailable
from bot.ops.writes import WRITE_SETTLE_SECONDS, Sent, Write, WriteKind
from bot.policy import Action
from bot.store import DeleteWindow, WindowState

SEND_AT_ONCE = 20
CLAIM_BATCH = 100


@dataclass(frozen=True)
class InUndoWindow:
    """A confirmed delete in its undo window: sent when the window ends, unless undone."""

    window: DeleteWindow


@dataclass(frozen=True)
class DeleteSent:
    """A delete whose window ended, and how its DELETE ended (`sent`)."""

    window: DeleteWindow
    sent: Sent


def window_state(sent: Sent) -> WindowState:
    if sent.done:
        return WindowState.DONE
    if sent.gone:
        return WindowState.GONE
    return WindowState.UNKNOWN if sent.unknown else WindowState.FAILED


class Undo(Core):
    """Deletes in their undo window."""

    async def undo_delete(self, actor: Actor, window_id: str) -> DeleteWindow:
        """Stop a delete in its window: its requester, an owner of the server, or an admin; only until the time
        its reply named. Someone with no role on the server hears what they would of an unknown delete."""
        window = await self._db(self.store.delete_window, window_id)
        if window is None:
            await self._audit(actor, Action.DELETE, "denied", detail="undo of an unknown delete")
            raise UndoUnavailable(None)
        audit = {"server_id": window.server_id, "backup_id": window.backup_id}
        if actor.user_id != window.requested_by:
            try:
                await self._authorize(actor, Action.DELETE, window.server_id, backup_id=window.backup_id)
            except PermissionDenied as exc:
                if exc.role is None:
                    raise UndoUnavailable(None) from None
                raise
        if not await self._db(self.store.undo_delete, window.id, actor.user_id):
            now = await self._db(self.store.delete_window, window.id)
            state = "due" if now.state is WindowState.WAITING else now.state
            await self._audit(actor, Action.DELETE, "denied", detail=f"undo, but the delete is {state}", **audit)
            raise UndoUnavailable(now)
        by = "" if actor.user_id == window.requested_by else f" (asked by {window.requested_by})"
        await self._audit(actor, Action.DELETE, "cancelled", detail=f"undone in its window{by}", **audit)
        return await self._db(self.store.delete_window, window.id)

    async def send_due_deletes(self) -> list[DeleteSent]:
        """Send the deletes whose window has ended, each once (claimed in the store), audited for their requester."""
        results: list[DeleteSent] = []
        at_once = asyncio.Semaphore(SEND_AT_ONCE)

        async def send(window: DeleteWindow) -> DeleteSent | None:
            async with at_once:
                return await self._end_window(window)

        while True:
            windows = await self._db(self.store.claim_due_deletes, limit=CLAIM_BATCH)
            ended = await asyncio.gather(*(send(window) for window in windows))
            results.extend(result for result in ended if result is not None)
            if len(windows) < CLAIM_BATCH:
                return results

    async def _end_window(self, window: DeleteWindow) -> DeleteSent | None:
        """Send one window's DELETE, or settle the one an earlier claimer sent; None if that cannot be known yet."""
        approved = f", approved by {window.approved_by}" if window.approved_by else ""
        context = f"after its undo window{approved}"
        earlier = await self._db(self.store.writes_for, window.id)
        if earlier:
            sent = await self.settle_recorded(earlier[-1], context, older_than=WRITE_SETTLE_SECONDS / 2)
            if sent is None:
                return None
        else:
            write = Write(WriteKind.DELETE, window.server_id, window.backup_id, path="undo", ref=window.id)
            sent = await self.send_write(Actor(window.requested_by), write, context=context)
        state = window_state(sent)
        detail = sent.why.english() if sent.why else ""
        await self.durable.write(
            "delete window", self.store.end_delete_window, window_id=window.id, state=state, detail=detail
        )
        return DeleteSent(dataclasses.replace(window, state=state, detail=detail), sent)
