"""Deletes and restores in two steps: asked for (a confirmation recorded), then confirmed (consumed once).

`request_*` finds the backup (by listing: the API has no endpoint for one), checks permission and records a
pending confirmation; `confirm_*` checks permission again for whoever confirms, and consumes the
confirmation atomically, so a double press acts at most once. A confirmed delete or restore then goes on
to the two-person rule (bot/ops/approvals.py), the undo window (bot/ops/undo.py) or the safety backup
(bot/ops/chains.py) where they apply, else is sent at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

from bot.backup_api import Backup
from bot.ops.approvals import Awaiting
from bot.ops.chains import ChainStarted
from bot.ops.core import Actor, Core, ReplyTo
from bot.ops.errors import BackupNotFound, ConfirmationMismatch, ConfirmationUnavailable, MayHaveHappened, NotRestorable
from bot.ops.undo import InUndoWindow
from bot.ops.writes import Sent, Write, WriteKind
from bot.policy import Action
from bot.store import Confirmation, ConfirmationState


@dataclass(frozen=True)
class Done:
    """The outcome of a confirmed delete or restore."""

    confirmation: Confirmation
    provider_message: str | None = None


class Confirmations(Core):
    """Asking for, confirming and cancelling deletes and restores."""

    async def request_delete(self, actor: Actor, backup_id: int) -> Confirmation:
        backup = await self._find(actor, Action.DELETE, backup_id)
        await self._authorize_on_backup(actor, Action.DELETE, backup)
        await self._from_its_channel(actor, Action.DELETE, backup.server.id, backup_id=backup_id)
        return await self._confirmation(Action.DELETE, backup, backup.server.id, backup.server.name, actor)

    async def request_restore(
        self, actor: Actor, backup_id: int, target_server_id: int | None = None, *, safety: bool = True
    ) -> Confirmation:
        """A restore to confirm; it records what the restore undoes (the target's newer backups) and
        whether the target has room for a safety backup, and whether the form offers one ticked."""
        backup, backups = await self._find_among(actor, Action.RESTORE, backup_id)
        target = backup.server.id if target_server_id is None else target_server_id
        await self._authorize_on_backup(actor, Action.RESTORE, backup)
        if target != backup.server.id:
            await self._authorize(actor, Action.RESTORE, target, backup_id=backup_id)
        await self._from_its_channel(actor, Action.RESTORE, backup.server.id, target, backup_id=backup_id)
        if not backup.is_restorable:
            await self._audit(
                actor,
                Action.RESTORE,
                "failed",
                server_id=target,
                backup_id=backup_id,
                detail=f"backup is {backup.status}",
            )
            raise NotRestorable(backup)
        names = await self._db(self.store.server_names)
        target_name = backup.server.name if target == backup.server.id else names.get(target, str(target))
        on_target = [b for b in backups if b.server.id == target]
        newer = sorted(
            (b for b in on_target if (b.created_at, b.id) > (backup.created_at, backup.id)),
            key=lambda b: (b.created_at, b.id),
        )
        return await self._confirmation(
            Action.RESTORE,
            backup,
            target,
            target_name,
            actor,
            newer_count=len(newer),
            newest_id=newer[-1].id if newer else None,
            newest_at=newer[-1].created_at.isoformat() if newer else None,
            target_manual_count=sum(b.backup_type == "manual" for b in on_target),
            safety=int(safety),
        )

    async def _confirmation(
        self, action: Action, backup: Backup, target_id: int, target_name: str, actor: Actor, **extra: Any
    ) -> Confirmation:
        await self._learn([backup])
        return await self._db(
            self.store.create_confirmation,
            action=action.value,
            backup_id=backup.id,
            server_id=backup.server.id,
            server_name=backup.server.name,
            target_server_id=target_id,
            target_server_name=target_name,
            backup_created_at=backup.created_at.isoformat(),
            backup_type=backup.backup_type,
            backup_description=backup.description,
            requested_by=actor.user_id,
            **extra,
        )

    async def pending_confirmation(self, actor: Actor, token: str, action: Action) -> Confirmation:
        """The confirmation behind a button, if it can still be acted on; a refusal is audited."""
        conf = await self._db(self.store.confirmation, token)
        if conf is not None and conf.state is ConfirmationState.PENDING and conf.action == action.value:
            if conf.created_at + self.confirmation_ttl >= self._clock():
                return conf
            await self._db(self.store.expire_confirmation, token)
            conf = await self._db(self.store.confirmation, token)
        await self._refused(actor, action, conf)

    async def _refused(self, actor: Actor, action: Action, conf: Confirmation | None) -> NoReturn:
        """Audit a press on a confirmation that can no longer be acted on, and say why."""
        if conf is None:
            detail, audit = "unknown or damaged confirmation", {}
        else:
            by = f" by {conf.used_by}" if conf.used_by else ""
            detail = f"confirmation already {conf.state.value}{by}"
            audit = {"server_id": conf.target_server_id, "backup_id": conf.backup_id}
        await self._audit(actor, action, "denied", detail=detail, **audit)
        raise ConfirmationUnavailable(conf)

    async def check_restore_text(self, actor: Actor, token: str, typed: str) -> Confirmation:
        """Does the typed text name the restore's target server? (No API call: fast enough for a modal ack.)"""
        conf = await self.pending_confirmation(actor, token, Action.RESTORE)
        if typed.strip() not in (conf.target_server_name, str(conf.target_server_id)):
            raise ConfirmationMismatch(conf, typed.strip())
        return conf

    async def authorize_confirmation(self, actor: Actor, token: str, action: Action) -> Confirmation:
        """The pending confirmation, if `actor` may act on it now (on both servers, for a restore elsewhere)."""
        conf = await self.pending_confirmation(actor, token, action)
        await self._authorize_on(actor, conf)
        return conf

    async def _authorize_on(self, actor: Actor, conf: Confirmation) -> None:
        action = Action(conf.action)
        await self._authorize(actor, action, conf.server_id, backup_id=conf.backup_id)
        if conf.target_server_id != conf.server_id:
            await self._authorize(actor, action, conf.target_server_id, backup_id=conf.backup_id)
        await self._from_its_channel(actor, action, conf.server_id, conf.target_server_id, backup_id=conf.backup_id)

    async def confirm_delete(
        self, actor: Actor, token: str, *, reply_to: ReplyTo | None = None
    ) -> Done | Awaiting | InUndoWindow:
        conf = await self.authorize_confirmation(actor, token, Action.DELETE)
        backup = await self._still_there(actor, Action.DELETE, conf)
        await self._claim(conf, actor, Action.DELETE)
        if await self.needs_approval(conf.server_id, conf.target_server_id):
            return await self._ask_approval(actor, conf, backup, "", reply_to)
        if self.delete_grace > timedelta(0):
            window = await self._db(
                self.store.open_delete_window,
                backup_id=conf.backup_id,
                server_id=conf.server_id,
                server_name=conf.server_name,
                backup_type=conf.backup_type,
                requested_by=actor.user_id,
                approved_by=None,
                channel_id=reply_to.channel_id if reply_to else None,
                response_url=reply_to.response_url if reply_to else None,
                due_at=(self._clock() + self.delete_grace).timestamp(),
            )
            return InUndoWindow(window)
        write = Write(WriteKind.DELETE, conf.server_id, conf.backup_id, ref=conf.id)
        await self._send_confirmed(actor, conf, write, "", reply_to)
        return Done(conf)

    async def confirm_restore(
        self,
        actor: Actor,
        token: str,
        typed: str,
        *,
        reason: str = "",
        reply_to: ReplyTo | None = None,
        safety: bool | None = None,
    ) -> Done | Awaiting | ChainStarted:
        """Send the restore; or, with a safety backup (the form's box, default the confirmation's),
        start the chain that sends it once the safety backup has completed."""
        conf = await self.check_restore_text(actor, token, typed)
        safety = conf.safety if safety is None else safety
        await self._authorize_on(actor, conf)
        backup = await self._still_there(actor, Action.RESTORE, conf)
        await self._claim(conf, actor, Action.RESTORE)
        if await self.needs_approval(conf.server_id, conf.target_server_id):
            return await self._ask_approval(actor, conf, backup, reason, reply_to, safety=safety)
        if safety:
            return await self._start_chain(actor, conf, reply_to)
        write = Write(WriteKind.RESTORE, conf.target_server_id, conf.backup_id, ref=conf.id)
        context = f"from backup {conf.backup_id} of server {conf.server_id}"
        sent = await self._send_confirmed(actor, conf, write, context, reply_to)
        return Done(conf, sent.message)

    async def cancel(self, actor: Actor, token: str) -> Confirmation:
        conf = await self._db(self.store.confirmation, token)
        action = Action(conf.action) if conf is not None else Action.DELETE
        if conf is None or conf.state is not ConfirmationState.PENDING:
            await self._refused(actor, action, conf)
        if actor.user_id != conf.requested_by:
            await self._authorize_on(actor, conf)
        if not await self._db(self.store.cancel_confirmation, conf.id, actor.user_id):
            await self._refused(actor, action, await self._db(self.store.confirmation, conf.id))
        await self._audit(actor, action, "cancelled", server_id=conf.target_server_id, backup_id=conf.backup_id)
        return conf

    async def _still_there(self, actor: Actor, action: Action, conf: Confirmation) -> Backup:
        """Re-find the backup at the moment of confirmation: gone (or, for a restore, no longer
        completed), the confirmation is spent and nothing is sent."""
        try:
            backup = await self._find(actor, action, conf.backup_id, gone=True)
        except BackupNotFound:
            await self._void(actor, action, conf, self.store.backup_gone_at_press, "the backup no longer exists")
            raise
        if action is Action.RESTORE and not backup.is_restorable:
            await self._void(
                actor, action, conf, self.store.backup_unrestorable_at_press, f"the backup is now {backup.status}"
            )
            raise NotRestorable(backup)
        return backup

    async def _void(self, actor: Actor, action: Action, conf: Confirmation, transition, why: str) -> None:
        if not await self._db(transition, conf.id, actor.user_id):
            await self._refused(actor, action, await self._db(self.store.confirmation, conf.id))
        await self._audit(
            actor, action, "failed", server_id=conf.target_server_id, backup_id=conf.backup_id, detail=why
        )

    async def _send_confirmed(
        self, actor: Actor, conf: Confirmation, write: Write, context: str, reply_to: ReplyTo | None
    ) -> Sent:
        """Send the write a claimed confirmation allows; unless done, raise what the person must hear.

        The confirmation keeps how it ended, for whoever presses it again; the write is never re-sent.
        """
        sent = await self.send_write(actor, write, context=context, reply_to=reply_to)
        if sent.done:
            return sent
        transition = self.store.write_found_nothing if sent.gone else self.store.write_failed
        await self.durable.write("confirmation state", transition, token=conf.id)
        if sent.gone:
            raise BackupNotFound(conf.backup_id, gone=True)
        if sent.unknown:
            raise MayHaveHappened(sent)
        raise sent.error

    async def _claim(self, conf: Confirmation, actor: Actor, action: Action) -> None:
        if not await self._db(self.store.use_confirmation, conf.id, actor.user_id):
            await self._refused(actor, action, await self._db(self.store.confirmation, conf.id))
