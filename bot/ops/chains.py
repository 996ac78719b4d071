"""A safety backup before a restore: the chain is a row in the store (`restore_chains`). The safety
backup is created at once, the background loop watches it (`advance_chain`), and the restore is sent
once, only after it completed; a chain whose bot died mid-step is reported, never re-sent.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from bot.backup_api import MANUAL_LIMIT, AcceptedButUnreadable, Backup, BackupApiError, BadRequest
from bot.i18n import N_, Words
from bot.ops.core import CHAIN_STEP_SECONDS, SAFETY_GIVE_UP, Actor, Core, ReplyTo
from bot.ops.errors import SafetyBackupFailed
from bot.policy import Action
from bot.store import ApprovalRequest, ChainState, Confirmation, RestoreChain


@dataclass(frozen=True)
class ChainStarted:
    """A restore waiting on its safety backup, which the API accepted."""

    chain: RestoreChain
    safety: Backup


@dataclass(frozen=True)
class ChainStep:
    """How a restore chain moved on: the restore sent (`why` None), or stopped with nothing restored
    (`offer_without`: the person may restore without a safety backup), or interrupted."""

    chain: RestoreChain
    provider_message: str | None = None
    why: Words | None = None
    offer_without: bool = False


class Chains(Core):
    """Restores waiting on their safety backup."""

    async def _start_chain(
        self,
        requester: Actor,
        source: Confirmation | ApprovalRequest,
        reply_to: ReplyTo | None,
        *,
        approved_by: str | None = None,
    ) -> ChainStarted:
        """Record the chain, then ask for the safety backup (an ordinary create on the requester's behalf).

        The chain is written first, so a bot that dies while asking leaves a trace that is reported
        (`interrupted_chains`) rather than a restore nobody hears of.
        """
        target = source.target_server_id
        chain = await self._db(
            self.store.start_chain,
            backup_id=source.backup_id,
            server_id=source.server_id,
            server_name=source.server_name,
            target_server_id=target,
            target_server_name=source.target_server_name,
            requested_by=requester.user_id,
            approved_by=approved_by,
            channel_id=reply_to.channel_id if reply_to else None,
            response_url=reply_to.response_url if reply_to else None,
            safety_backup_id=None,
        )
        description = f"Safety backup before restoring from #{source.backup_id}"
        try:
            safety = await self._api(
                requester, Action.CREATE, self.api.create_backup(target, description), server_id=target
            )
        except AcceptedButUnreadable:
            await self._audit(
                requester, Action.CREATE, "done", server_id=target, detail=f"{description} [answer unreadable]"
            )
            why = Words(
                N_("the backup API accepted the safety backup but its answer could not be read, so I cannot follow it")
            )
            raise await self._stop_chain(chain, ChainState.CREATING, why) or SafetyBackupFailed(chain, why) from None
        except BackupApiError as exc:
            no_room = False
            if isinstance(exc, BadRequest):
                with contextlib.suppress(BackupApiError):
                    no_room = (await self._room(target))[0] >= MANUAL_LIMIT
            why = (
                Words(
                    N_("there is no room for a safety backup: server {id} already has {limit} manual backups"),
                    id=target,
                    limit=MANUAL_LIMIT,
                )
                if no_room
                else Words(N_("the safety backup failed ({error})"), error=exc)
            )
            stopped = await self._stop_chain(chain, ChainState.CREATING, why, no_room=no_room)
            raise stopped or SafetyBackupFailed(chain, why, no_room=no_room) from exc
        await self._learn([safety])
        await self.durable.write(
            "restore chain",
            self.store.move_chain,
            chain_id=chain.id,
            old=ChainState.CREATING,
            new=ChainState.WAITING,
            safety_backup_id=safety.id,
        )
        await self._audit(requester, Action.CREATE, "done", server_id=target, backup_id=safety.id, detail=description)
        return ChainStarted(await self._db(self.store.chain, chain.id), safety)

    async def _stop_chain(
        self, chain: RestoreChain, old: ChainState, why: Words, *, no_room: bool = False
    ) -> SafetyBackupFailed | None:
        """End a chain with nothing restored; returns the error to raise (None if another process ended it)."""
        if not await self._db(self.store.move_chain, chain.id, old, ChainState.FAILED, detail=why.english()):
            return None
        await self._audit(
            Actor(chain.requested_by),
            Action.RESTORE,
            "failed",
            server_id=chain.target_server_id,
            backup_id=chain.backup_id,
            detail=f"not sent: {why.english()}",
        )
        return SafetyBackupFailed(await self._db(self.store.chain, chain.id), why, no_room=no_room)

    async def advance_chain(self, chain: RestoreChain, safety: Backup | None) -> ChainStep | None:
        """Move a waiting chain on, given its safety backup as the API lists it now (None: not listed).

        Completed: the chain is claimed (waiting → restoring) and the restore sent by the one caller
        that claimed it. Anything else that ended, or a safety backup gone: nothing restored.
        """
        label = chain.safety_backup_id
        if safety is not None and safety.is_running:
            if self._clock() - datetime.fromisoformat(chain.created_at) < SAFETY_GIVE_UP:
                return None
            why = Words(N_("safety backup #{id} was still running after 6 hours"), id=label)
        elif safety is None:
            why = Words(N_("safety backup #{id} is no longer in the backup API's list"), id=label)
        elif not safety.is_restorable:
            why = Words(N_("safety backup #{id} ended {status}"), id=label, status=safety.status)
        else:
            return await self._send_chained_restore(chain, safety)
        stopped = await self._stop_chain(chain, ChainState.WAITING, why)
        return ChainStep(stopped.chain, why=why, offer_without=True) if stopped else None

    async def _send_chained_restore(self, chain: RestoreChain, safety: Backup) -> ChainStep | None:
        if not await self._db(self.store.move_chain, chain.id, ChainState.WAITING, ChainState.RESTORING):
            return None
        requester = Actor(chain.requested_by)
        audit = {"server_id": chain.target_server_id, "backup_id": chain.backup_id}
        approved = f", approved by {chain.approved_by}" if chain.approved_by else ""
        try:
            message = await self.api.restore(chain.target_server_id, chain.backup_id)
        except BackupApiError as exc:
            why = Words(N_("the restore failed ({error})"), error=exc)
            await self.durable.write(
                "restore chain",
                self.store.move_chain,
                chain_id=chain.id,
                old=ChainState.RESTORING,
                new=ChainState.FAILED,
                detail=why.english(),
            )
            await self._audit(
                requester, Action.RESTORE, "failed", detail=f"after {safety.id}{approved}; {why.english()}", **audit
            )
            return ChainStep(await self._db(self.store.chain, chain.id), why=why)
        await self.durable.write(
            "restore chain", self.store.move_chain, chain_id=chain.id, old=ChainState.RESTORING, new=ChainState.DONE
        )
        detail = f"from backup {chain.backup_id} of server {chain.server_id}, after safety backup {safety.id}{approved}"
        await self._audit(requester, Action.RESTORE, "done", detail=detail, **audit)
        return ChainStep(await self._db(self.store.chain, chain.id), provider_message=message)

    async def interrupted_chains(self) -> list[ChainStep]:
        """Chains whose process died mid-step: reported once, audited, never re-sent."""
        steps = []
        for chain in await self._db(self.store.interrupt_stale_chains, CHAIN_STEP_SECONDS):
            if chain.safety_backup_id is None:
                why = Words(N_("the bot stopped while asking for the safety backup, so the restore was not sent"))
            else:
                why = Words(N_("the bot stopped while sending the restore: it may have been sent"))
            await self._audit(
                Actor(chain.requested_by),
                Action.RESTORE,
                "failed",
                server_id=chain.target_server_id,
                backup_id=chain.backup_id,
                detail=f"interrupted: {why.english()}",
            )
            steps.append(ChainStep(chain, why=why, offer_without=chain.safety_backup_id is None))
        return steps
