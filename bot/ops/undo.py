"""The undo window for deletes: a confirmed delete waits in the store (`delete_windows`) with an Undo
button, and the background loop sends it once its window has ended.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.backup_api import BackupApiError, NotFound
from bot.i18n import N_, Words
from bot.ops.core import Actor, Core
from bot.ops.errors import UndoUnavailable
from bot.policy import Action
from bot.store import DeleteWindow, WindowState


@dataclass(frozen=True)
class InUndoWindow:
    """A confirmed delete in its undo window: sent when the window ends, unless undone."""

    window: DeleteWindow


@dataclass(frozen=True)
class DeleteSent:
    """A delete whose window ended: sent (`why` None), or it could not be (`why` says so)."""

    window: DeleteWindow
    why: Words | None = None


class Undo(Core):
    """Deletes in their undo window."""

    async def undo_delete(self, actor: Actor, window_id: str) -> DeleteWindow:
        """Stop a delete in its window: its requester, an owner of the server, or an admin."""
        window = await self._db(self.store.delete_window, window_id)
        if window is None:
            await self._audit(actor, Action.DELETE, "denied", detail="undo of an unknown delete")
            raise UndoUnavailable(None)
        audit = {"server_id": window.server_id, "backup_id": window.backup_id}
        if actor.user_id != window.requested_by:
            await self._authorize(actor, Action.DELETE, window.server_id, backup_id=window.backup_id)
        if not await self._db(self.store.undo_delete, window.id, actor.user_id):
            now = await self._db(self.store.delete_window, window.id)
            await self._audit(actor, Action.DELETE, "denied", detail=f"undo, but the delete is {now.state}", **audit)
            raise UndoUnavailable(now)
        by = "" if actor.user_id == window.requested_by else f" (asked by {window.requested_by})"
        await self._audit(actor, Action.DELETE, "cancelled", detail=f"undone in its window{by}", **audit)
        return await self._db(self.store.delete_window, window.id)

    async def send_due_deletes(self) -> list[DeleteSent]:
        """Send the deletes whose window has ended, each once (claimed in the store), audited for their requester."""
        results = []
        for window in await self._db(self.store.claim_due_deletes):
            audit = {"server_id": window.server_id, "backup_id": window.backup_id}
            why = None
            try:
                await self.api.delete_backup(window.backup_id)
                state, outcome = WindowState.DONE, "done"
            except NotFound:
                state, outcome, why = WindowState.GONE, "failed", Words(N_("the backup no longer exists"))
            except BackupApiError as exc:
                state, outcome = WindowState.FAILED, "failed"
                why = Words(N_("the backup API failed ({error})"), error=f"{type(exc).__name__}: {exc}")
            said = why.english() if why else ""
            await self.durable.write(
                "delete window", self.store.end_delete_window, window_id=window.id, state=state, detail=said
            )
            approved = f", approved by {window.approved_by}" if window.approved_by else ""
            detail = f"after its undo window{approved}" + (f"; {said}" if why else "")
            await self._audit(Actor(window.requested_by), Action.DELETE, outcome, detail=detail, **audit)
            results.append(DeleteSent(await self._db(self.store.delete_window, window.id), why))
        return results
