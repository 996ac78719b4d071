"""The two-person rule: a confirmed delete or restore on a server under it becomes a request that a
second person approves or denies (never the requester); approved, the write is sent once. Requests
live in the store (`approval_requests`) and expire in the background loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.backup_api import Backup, BackupApiError, NotFound
from bot.i18n import N_, Words
from bot.ops.chains import ChainStarted
from bot.ops.core import CHAIN_STEP_SECONDS, Actor, Core, ReplyTo
from bot.ops.errors import (
    ApprovalUnavailable,
    Interrupted,
    NotRestorable,
    NotTheRequester,
    OwnRequest,
    SafetyBackupFailed,
)
from bot.policy import Action
from bot.store import ApprovalRequest, ApprovalState, Confirmation


@dataclass(frozen=True)
class Awaiting:
    """A confirmed delete or restore that waits for a second person (the two-person rule)."""

    request: ApprovalRequest


@dataclass(frozen=True)
class Decision:
    """How an approval request ended: `request` as it now stands; `error` if the approved write failed."""

    request: ApprovalRequest
    provider_message: str | None = None
    error: Exception | None = None
    chain: ChainStarted | None = None  # an approved restore that first takes a safety backup


class Approvals(Core):
    """The two-person rule."""

    async def set_approvals(self, actor: Actor, server_id: int, on: bool) -> bool:
        """Turn the two-person rule on or off for a server (admin); True if that changed anything."""
        await self._authorize(actor, Action.APPROVALS, None)
        changed = await self._db(self.store.set_approval_rule, server_id, on, actor.user_id)
        words = f"two-person rule {'on' if on else 'off'}" + ("" if changed else " (unchanged)")
        await self._audit(actor, Action.APPROVALS, "done", server_id=server_id, detail=words)
        return changed

    async def approval_rules(self) -> dict[int, str]:
        return await self._db(self.store.approval_rules)

    async def needs_approval(self, *server_ids: int) -> bool:
        rules = await self._db(self.store.approval_rules)
        return any(sid in rules for sid in server_ids)

    async def _ask_approval(
        self,
        actor: Actor,
        conf: Confirmation,
        backup: Backup,
        reason: str,
        reply_to: ReplyTo | None,
        *,
        safety: bool = False,
    ) -> Awaiting:
        """The requester has confirmed: record the request instead of sending the write."""
        request = await self._db(
            self.store.create_approval,
            action=conf.action,
            backup_id=conf.backup_id,
            server_id=conf.server_id,
            server_name=conf.server_name,
            target_server_id=conf.target_server_id,
            target_server_name=conf.target_server_name,
            backup_created_at=conf.backup_created_at,
            backup_type=conf.backup_type,
            backup_description=backup.description,
            requested_by=actor.user_id,
            reason=reason.strip()[:500],
            origin_channel=reply_to.channel_id if reply_to else None,
            response_url=reply_to.response_url if reply_to else None,
            expires_at=(self._clock() + self.approval_ttl).timestamp(),
            safety=int(safety and conf.action == Action.RESTORE.value),
        )
        return Awaiting(request)

    async def _open_request(self, actor: Actor, request_id: str, action: Action | None) -> ApprovalRequest:
        """The request behind a button, if it can still be decided; a refusal is audited (under `action`,
        else the request's own action)."""
        request = await self._db(self.store.approval, request_id)
        if action is None:
            action = Action(request.action) if request else Action.APPROVALS
        expired = (
            request is not None
            and request.state is ApprovalState.PENDING
            and (request.expires_at <= self._clock().timestamp())
        )
        if request is None or request.state is not ApprovalState.PENDING or expired:
            state = "expired" if expired else (request.state.value if request else "unknown")
            audit = {"server_id": request.target_server_id, "backup_id": request.backup_id} if request else {}
            await self._audit(actor, action, "denied", detail=f"approval request {state}", **audit)
            raise ApprovalUnavailable(request, expired=expired)
        return request

    async def _may_decide(self, actor: Actor, request: ApprovalRequest, action: Action) -> None:
        """An owner of every server involved, or an admin; never the requester."""
        audit = {"server_id": request.target_server_id, "backup_id": request.backup_id}
        if actor.user_id == request.requested_by:
            await self._audit(actor, action, "denied", detail="may not decide on one's own request", **audit)
            raise OwnRequest(request)
        admin = await self.is_admin(actor)
        for server_id in sorted(request.servers):
            await self._authorize(actor, action, server_id, admin=admin, backup_id=request.backup_id)

    async def approve(self, actor: Actor, request_id: str) -> Decision:
        """Approve a pending request: the write is sent exactly once, by the one approval that claims it."""
        request = await self._open_request(actor, request_id, Action.APPROVE)
        await self._may_decide(actor, request, Action.APPROVE)
        if not await self._db(self.store.claim_approval, request.id, actor.user_id):
            raise ApprovalUnavailable(await self._db(self.store.approval, request.id))
        action = Action(request.action)
        requester = Actor(request.requested_by)
        audit = {"server_id": request.target_server_id, "backup_id": request.backup_id}
        what = f"{request.action} of backup {request.backup_id} asked by {request.requested_by}"
        try:
            backup = await self.api.find_backup(request.backup_id)
            if action is Action.RESTORE and not backup.is_restorable:
                raise NotRestorable(backup)
            if action is Action.RESTORE and request.safety:
                reply_to = ReplyTo(request.origin_channel, request.response_url)
                started = await self._start_chain(requester, request, reply_to, approved_by=actor.user_id)
                detail = f"safety backup #{started.safety.id} started; the restore follows once it completes"
                await self.durable.write(
                    "approval state", self.store.approval_carried_out, request_id=request.id, detail=detail
                )
                await self._audit(actor, Action.APPROVE, "done", detail=what, **audit)
                return Decision(await self._db(self.store.approval, request.id), chain=started)
            if action is Action.DELETE:
                await self.api.delete_backup(request.backup_id)
                message = None
            else:
                message = await self.api.restore(request.target_server_id, request.backup_id)
        except SafetyBackupFailed as exc:
            await self.durable.write(
                "approval state", self.store.approval_write_failed, request_id=request.id, detail=str(exc)
            )
            await self._audit(actor, Action.APPROVE, "done", detail=what, **audit)
            return Decision(await self._db(self.store.approval, request.id), error=exc)
        except (BackupApiError, NotRestorable) as exc:
            why = "the backup no longer exists" if isinstance(exc, NotFound) else f"{type(exc).__name__}: {exc}"
            await self.durable.write(
                "approval state", self.store.approval_write_failed, request_id=request.id, detail=why
            )
            await self._audit(actor, Action.APPROVE, "done", detail=what, **audit)
            await self._audit(requester, action, "failed", detail=f"approved by {actor.user_id}; {why}", **audit)
            return Decision(await self._db(self.store.approval, request.id), error=exc)
        await self.durable.write("approval state", self.store.approval_carried_out, request_id=request.id)
        await self._audit(actor, Action.APPROVE, "done", detail=what, **audit)
        await self._audit(requester, action, "done", detail=f"approved by {actor.user_id}", **audit)
        return Decision(await self._db(self.store.approval, request.id), provider_message=message)

    async def deny(self, actor: Actor, request_id: str) -> Decision:
        request = await self._open_request(actor, request_id, Action.DENY)
        await self._may_decide(actor, request, Action.DENY)
        if not await self._db(self.store.deny_approval, request.id, actor.user_id):
            raise ApprovalUnavailable(await self._db(self.store.approval, request.id))
        audit = {"server_id": request.target_server_id, "backup_id": request.backup_id}
        what = f"{request.action} of backup {request.backup_id} asked by {request.requested_by}"
        await self._audit(actor, Action.DENY, "done", detail=what, **audit)
        await self._audit(
            Actor(request.requested_by),
            Action(request.action),
            "cancelled",
            detail=f"denied by {actor.user_id}",
            **audit,
        )
        return Decision(await self._db(self.store.approval, request.id))

    async def withdraw(self, actor: Actor, request_id: str) -> Decision:
        request = await self._open_request(actor, request_id, None)
        action = Action(request.action)
        audit = {"server_id": request.target_server_id, "backup_id": request.backup_id}
        if actor.user_id != request.requested_by:
            await self._audit(actor, action, "denied", detail="only the requester may withdraw", **audit)
            raise NotTheRequester(request)
        if not await self._db(self.store.withdraw_approval, request.id, actor.user_id):
            raise ApprovalUnavailable(await self._db(self.store.approval, request.id))
        await self._audit(actor, action, "cancelled", detail="withdrawn before a decision", **audit)
        return Decision(await self._db(self.store.approval, request.id))

    async def interrupted_approvals(self) -> list[Decision]:
        """Approved requests whose approver's bot died while sending the write: failed, audited, told; not re-sent."""
        decisions = []
        for request in await self._db(self.store.interrupt_stale_approvals, CHAIN_STEP_SECONDS):
            why = Words(N_("the bot stopped while carrying it out; it may have happened: check `/backup list`"))
            await self._audit(
                Actor(request.requested_by),
                Action(request.action),
                "failed",
                server_id=request.target_server_id,
                backup_id=request.backup_id,
                detail=f"approved by {request.decided_by}; interrupted: {why.english()}",
            )
            decisions.append(Decision(request, error=Interrupted(why)))
        return decisions

    async def expire_approvals(self) -> list[Decision]:
        """Requests nobody decided in time: expired (each by one caller), audited for their requesters."""
        expired = await self._db(self.store.expire_approvals)
        minutes = self.approval_ttl.total_seconds() / 60
        for request in expired:
            await self._audit(
                Actor(request.requested_by),
                Action(request.action),
                "cancelled",
                server_id=request.target_server_id,
                backup_id=request.backup_id,
                detail=f"expired: nobody decided within {minutes:g} minutes",
            )
        return [Decision(request) for request in expired]
