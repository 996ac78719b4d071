"""A safety backup before a restore: the chain is a row in the store (`restore_chains`).

The safety backup is created at once (its description ends with the chain's tag, so it can be found by
listing), the background loop watches it (`advance_chain`), and the restore is sent once, only after it
completed. Both writes go through `send_write`: a restore the API did not confirm is told as "may have
started", never as "not sent".

A chain whose bot died mid-step (`interrupted_chains`) is settled from its writes' records: a safety
backup never asked for stops the chain (nothing restored); one whose create was on its way is looked for
by its tag, and the chain goes on if it is there; a restore never sent is sent by the next round; one on
its way stays "may have started". Nothing is sent twice.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from bot.backup_api import MANUAL_LIMIT, Backup, BackupApiError, BadRequest
from bot.i18n import N_, Words
from bot.ops.core import CHAIN_STEP_SECONDS, SAFETY_GIVE_UP, Actor, Core, ReplyTo
from bot.ops.errors import SafetyBackupFailed
from bot.ops.writes import Sent, Write, WriteKind, matches
from bot.policy import Action
from bot.store import ApprovalRequest, ChainState, Confirmation, RestoreChain, WriteRecord


@dataclass(frozen=True)
class ChainStarted:
    """A restore waiting on its safety backup, which the API accepted."""

    chain: RestoreChain
    safety: Backup


@dataclass(frozen=True)
class ChainStep:
    """How a restore chain moved on: its restore sent (`sent`: done, or unknown), or stopped with nothing
    restored (`why`; `offer_without`: the person may restore without a safety backup), or, after its bot
    died while asking, its safety backup found after all (`found`): the restore follows it."""

    chain: RestoreChain
    sent: Sent | None = None
    why: Words | None = None
    offer_without: bool = False
    found: Backup | None = None

    @property
    def restored(self) -> bool:
        return self.sent is not None and self.sent.done

    @property
    def maybe(self) -> bool:
        """The restore was sent, but not confirmed: it may have started."""
        return self.sent is not None and self.sent.unknown


def safety_description(backup_id: int, chain_id: str) -> str:
    return f"Safety backup before restoring from #{backup_id} [restore {chain_id[:8]}]"


class Chains(Core):
    """Restores waiting on their safety backup."""

    async def _start_chain(
        self,
        requester: Actor,
        source: Confirmation | ApprovalRequest,
        reply_to: ReplyTo | None,
        *,
        approved_by: str | None = None,
        request_id: str | None = None,
    ) -> ChainStarted:
        """Record the chain, then ask for the safety backup (a create on the requester's behalf).

        The chain is written first, so a bot that dies while asking leaves a trace that is settled
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
            request_id=request_id,
        )
        description = safety_description(source.backup_id, chain.id)
        write = Write(WriteKind.CREATE, target, description=description, path="chain", ref=chain.id)
        sent = await self.send_write(requester, write, context=description)
        safety = sent.backup
        if (sent.done and safety is None) or sent.unknown:
            safety = await self._look_for(target, description)
        if safety is not None:
            return await self._wait_on(chain, safety)
        why, no_room = await self._why_not_started(target, sent)
        stopped = await self._stop_chain(chain, ChainState.CREATING, why, no_room=no_room)
        raise stopped or SafetyBackupFailed(chain, why, no_room=no_room) from sent.error

    async def _look_for(self, server_id: int, description: str) -> Backup | None:
        """The safety backup made for a chain, found by its tag (its create's answer was lost or unconfirmed)."""
        try:
            listed = await self.api.list_backups(server_id, "manual")
        except BackupApiError:
            return None
        found = [b for b in listed if matches(b, description)]
        return found[0] if len(found) == 1 else None

    async def _wait_on(self, chain: RestoreChain, safety: Backup) -> ChainStarted:
        await self.durable.write(
            "restore chain",
            self.store.move_chain,
            chain_id=chain.id,
            old=ChainState.CREATING,
            new=ChainState.WAITING,
            safety_backup_id=safety.id,
        )
        return ChainStarted(await self._db(self.store.chain, chain.id), safety)

    async def _why_not_started(self, target: int, sent: Sent) -> tuple[Words, bool]:
        """Why there is no safety backup to wait on (the chain stops: nothing is restored), and whether the
        server had no room for one."""
        no_room = False
        if isinstance(sent.error, BadRequest):
            with contextlib.suppress(BackupApiError):
                no_room = (await self._room(target))[0] >= MANUAL_LIMIT
        if no_room:
            why = Words(
                N_("there is no room for a safety backup: server {id} already has {limit} manual backups"),
                id=target,
                limit=MANUAL_LIMIT,
            )
        elif sent.done:
            why = Words(
                N_("the backup API accepted the safety backup but its answer could not be read, so I cannot follow it")
            )
        elif sent.unknown:
            why = Words(
                N_(
                    "the backup API did not confirm the safety backup ({why}): it may have been made, but I cannot follow it"
                ),
                why=sent.why,
            )
        else:
            why = Words(N_("the safety backup was not made ({why})"), why=sent.why)
        return why, no_room

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
        approved = f", approved by {chain.approved_by}" if chain.approved_by else ""
        context = (
            f"from backup {chain.backup_id} of server {chain.server_id}, after safety backup {safety.id}{approved}"
        )
        write = Write(WriteKind.RESTORE, chain.target_server_id, chain.backup_id, path="chain", ref=chain.id)
        sent = await self.send_write(Actor(chain.requested_by), write, context=context)
        return await self._restore_ended(chain, sent)

    async def _restore_ended(self, chain: RestoreChain, sent: Sent) -> ChainStep:
        """Record how the chain's restore ended: done, not done (nothing restored), or unknown (may have started)."""
        if sent.done:
            state, why = ChainState.DONE, None
        elif sent.unknown:
            state, why = ChainState.UNKNOWN, sent.why
        else:
            state, why = ChainState.FAILED, Words(N_("the restore was not done ({why})"), why=sent.why)
        await self.durable.write(
            "restore chain",
            self.store.move_chain,
            chain_id=chain.id,
            old=ChainState.RESTORING,
            new=state,
            detail=why.english() if why else None,
        )
        return ChainStep(await self._db(self.store.chain, chain.id), sent, why=None if sent.unknown else why)

    async def interrupted_chains(self) -> list[ChainStep]:
        """Chains whose bot died mid-step, settled once each from their writes' records; nothing sent twice."""
        steps = []
        for chain in await self._db(self.store.stale_chains, CHAIN_STEP_SECONDS):
            writes = await self._db(self.store.writes_for, chain.id)
            kind = WriteKind.CREATE if chain.state is ChainState.CREATING else WriteKind.RESTORE
            record = next((w for w in reversed(writes) if w.kind == kind.value), None)
            if kind is WriteKind.CREATE:
                step = await self._settle_creating(chain, record)
            else:
                step = await self._settle_restoring(chain, record)
            if step is not None:
                steps.append(step)
        return steps

    async def _settle_creating(self, chain: RestoreChain, record: WriteRecord | None) -> ChainStep | None:
        if record is None:
            why = Words(N_("the bot stopped before asking for the safety backup, so the restore was not sent"))
            stopped = await self._stop_chain(chain, ChainState.CREATING, why)
            return ChainStep(stopped.chain, why=why, offer_without=True) if stopped else None
        sent = await self.settle_recorded(record, older_than=CHAIN_STEP_SECONDS / 2)
        if sent is None:
            return None
        safety = sent.backup
        if safety is None and sent.done:
            safety = await self._look_for(chain.target_server_id, record.description)
        if safety is not None:
            if not await self._db(
                self.store.move_chain, chain.id, ChainState.CREATING, ChainState.WAITING, safety_backup_id=safety.id
            ):
                return None
            return ChainStep(await self._db(self.store.chain, chain.id), found=safety)
        why, no_room = await self._why_not_started(chain.target_server_id, sent)
        stopped = await self._stop_chain(chain, ChainState.CREATING, why, no_room=no_room)
        return ChainStep(stopped.chain, why=why, offer_without=True) if stopped else None

    async def _settle_restoring(self, chain: RestoreChain, record: WriteRecord | None) -> ChainStep | None:
        if record is None:  # claimed, but the restore never went out: the next round sends it
            await self._db(self.store.move_chain, chain.id, ChainState.RESTORING, ChainState.WAITING)
            return None
        sent = await self.settle_recorded(record, older_than=CHAIN_STEP_SECONDS / 2)
        return None if sent is None else await self._restore_ended(chain, sent)
