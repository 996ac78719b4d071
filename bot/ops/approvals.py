"""The two-person rule: a confirmed delete or restore on a server under it becomes a request that a
second person approves or denies (never the requester); approved, the write is sent once, through
`send_write`, and the decision is told as the write ended: done, not done, or unknown (it may have
happened). Requests live in the store (`approval_requests`) and expire in the background loop; one whose
approver's bot died while carrying it out is settled from its write's record, never sent twice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

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
from bot.ops.writes import Sent, Write, WriteKind
from bot.policy import Action
from bot.store import ApprovalRequest, ApprovalState, Confirmation


@dataclass(frozen=True)
class Awaiting:
    """A confirmed delete or restore that waits for a second person (the two-person rule)."""

    request: ApprovalRequest


@dataclass(frozen=True)
class Decision:
    """How an approval request ended: `request` as it ended; for an approved one, its write (`sent`), or why
    it was not sent (`error`), or the safety backup it started (`chain`), or that its restore chain,
    started by a bot that then died, carries it on (`handed_on`)."""

    request: ApprovalRequest
    sent: Sent | None = None
    error: Exception | None = None
    chain: ChainStarted | None = None
    handed_on: bool = False

    @property
    def provider_message(self) -> str | None:
        return self.sent.message if self.sent else None


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
            audit = {"server_id": request.target_server_id, "backup_id": request.backup_id or None} if request else {}
            await self._audit(actor, action, "denied", detail=f"approval request {state}", **audit)
            raise ApprovalUnavailable(request, expired=expired)
        return request

    async def _may_decide(self, actor: Actor, request: ApprovalRequest, action: Action) -> None:
        """An owner of every server involved, or an admin; never the requester."""
        audit = {"server_id": request.target_server_id, "backup_id": request.backup_id or None}
        if actor.user_id == request.requested_by:
            await self._audit(actor, action, "denied", detail="may not decide on one's own request", **audit)
            raise OwnRequest(request)
        admin = await self.is_admin(actor)
        for server_id in sorted(request.servers):
            await self._authorize(actor, action, server_id, admin=admin, backup_id=request.backup_id or None)

    async def approve(self, actor: Actor, request_id: str) -> Decision:
        """Approve a pending request: the write is sent exactly once, by the one approval that claims it."""
        request = await self._open_request(actor, request_id, Action.APPROVE)
        await self._may_decide(actor, request, Action.APPROVE)
        if not await self._db(self.store.claim_approval, request.id, actor.user_id):
            raise ApprovalUnavailable(await self._db(self.store.approval, request.id))
        request = dataclasses.replace(request, state=ApprovalState.APPROVED, decided_by=actor.user_id)
        what = _asked(request)
        audit = {"server_id": request.target_server_id, "backup_id": request.backup_id or None}
        await self._audit(actor, Action.APPROVE, "done", detail=what, **audit)
        return await self._carry_out(request)

    async def _carry_out(self, request: ApprovalRequest) -> Decision:
        """Send the approved write (or start the safety backup an approved restore waits on)."""
        requester = Actor(request.requested_by)
        action = Action(request.action)
        if action is Action.POLICY:  # a lower keep: saved, no write to send
            detail = await self.apply_approved_policy(request)
            return await self._closed(request, ApprovalState.DONE, detail)
        try:
            backup = await self.api.find_backup(request.backup_id)
            if action is Action.RESTORE and not backup.is_restorable:
                raise NotRestorable(backup)
        except (BackupApiError, NotRestorable) as exc:
            why = "the backup no longer exists" if isinstance(exc, NotFound) else f"{type(exc).__name__}: {exc}"
            await self._audit(
                requester,
                action,
                "failed",
                server_id=request.target_server_id,
                backup_id=request.backup_id,
                detail=f"approved by {request.decided_by}; not sent: {why}",
            )
            return await self._closed(request, ApprovalState.FAILED, why, error=exc)
        if action is Action.RESTORE and request.safety:
            reply_to = ReplyTo(request.origin_channel, request.response_url)
            try:
                started = await self._start_chain(
                    requester, request, reply_to, approved_by=request.decided_by, request_id=request.id
                )
            except SafetyBackupFailed as exc:
                return await self._closed(request, ApprovalState.FAILED, str(exc), error=exc)
            detail = f"safety backup #{started.safety.id} started; the restore follows once it completes"
            return await self._closed(request, ApprovalState.DONE, detail, chain=started)
        kind = WriteKind.DELETE if action is Action.DELETE else WriteKind.RESTORE
        write = Write(kind, request.target_server_id, request.backup_id, path="approval", ref=request.id)
        sent = await self.send_write(requester, write, context=f"approved by {request.decided_by}")
        return await self._written(request, sent)

    async def _written(self, request: ApprovalRequest, sent: Sent) -> Decision:
        """An approved request whose write ended: done, not done, or unknown (it may have happened)."""
        state = ApprovalState.DONE if sent.done else ApprovalState.UNKNOWN if sent.unknown else ApprovalState.FAILED
        return await self._closed(request, state, sent.why.english() if sent.why else "", sent=sent)

    async def _closed(self, request: ApprovalRequest, state: ApprovalState, detail: str, **outcome: Any) -> Decision:
        """approved → its end, kept until the store takes it; the decision is told as it ended, whatever the store."""
        await self.durable.write(
            "approval state", self.store.end_approval, request_id=request.id, state=state, detail=detail
        )
        return Decision(dataclasses.replace(request, state=state, detail=detail), **outcome)

    async def deny(self, actor: Actor, request_id: str) -> Decision:
        request = await self._open_request(actor, request_id, Action.DENY)
        await self._may_decide(actor, request, Action.DENY)
        if not await self._db(self.store.deny_approval, request.id, actor.user_id):
            raise ApprovalUnavailable(await self._db(self.store.approval, request.id))
        audit = {"server_id": request.target_server_id, "backup_id": request.backup_id or None}
        what = _asked(request)
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
        audit = {"server_id": request.target_server_id, "backup_id": request.backup_id or None}
        if actor.user_id != request.requested_by:
            await self._audit(actor, action, "denied", detail="only the requester may withdraw", **audit)
            raise NotTheRequester(request)
        if not await self._db(self.store.withdraw_approval, request.id, actor.user_id):
            raise ApprovalUnavailable(await self._db(self.store.approval, request.id))
        await self._audit(actor, action, "cancelled", detail="withdrawn before a decision", **audit)
        return Decision(await self._db(self.store.approval, request.id))

    async def interrupted_approvals(self) -> list[Decision]:
        """Approved requests whose approver's bot died while carrying them out, settled once each from what
        was recorded: nothing sent, not done; a write on its way, settled by looking; never sent twice."""
        decisions = []
        for request in await self._db(self.store.stale_approvals, CHAIN_STEP_SECONDS):
            decision = await self._settle_approved(request)
            if decision is not None:
                decisions.append(decision)
        return decisions

    async def _settle_approved(self, request: ApprovalRequest) -> Decision | None:
        if request.action == Action.POLICY.value:
            state = await self.settle_policy_request(request)
            detail = "saved" if state is ApprovalState.DONE else "the bot stopped before saving it"
            if not await self._db(self.store.end_approval, request.id, state, detail):
                return None
            return Decision(dataclasses.replace(request, state=state, detail=detail))
        if request.safety and request.action == Action.RESTORE.value:
            chain = await self._db(self.store.chain_of_request, request.id)
            if chain is not None:  # the restore chain took over: it tells its own story
                detail = "carried on by its restore chain"
                if not await self._db(self.store.end_approval, request.id, ApprovalState.DONE, detail):
                    return None
                return Decision(dataclasses.replace(request, state=ApprovalState.DONE, detail=detail), handed_on=True)
        writes = await self._db(self.store.writes_for, request.id)
        if writes:
            sent = await self.settle_recorded(
                writes[-1], f"approved by {request.decided_by}", older_than=CHAIN_STEP_SECONDS / 2
            )
            return None if sent is None else await self._written(request, sent)
        why = Words(N_("the bot stopped before sending it, so nothing was done"))
        if not await self._db(self.store.end_approval, request.id, ApprovalState.FAILED, why.english()):
            return None
        await self._audit(
            Actor(request.requested_by),
            Action(request.action),
            "failed",
            server_id=request.target_server_id,
            backup_id=request.backup_id,
            detail=f"approved by {request.decided_by}; interrupted before it was sent: {why.english()}",
        )
        failed = dataclasses.replace(request, state=ApprovalState.FAILED, detail=why.english())
        return Decision(failed, error=Interrupted(why))

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
                backup_id=request.backup_id or None,
                detail=f"expired: nobody decided within {minutes:g} minutes",
            )
        return [Decision(request) for request in expired]


def _asked(request: ApprovalRequest) -> str:
    """What a request asks, for the audit of its decision."""
    if request.action == Action.POLICY.value:
        return f"a lower keep for the policy of server {request.server_id} asked by {request.requested_by}"
    return f"{request.action} of backup {request.backup_id} asked by {request.requested_by}"
