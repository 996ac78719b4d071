"""The two-person rule's buttons: Approve and Deny on the card, Withdraw on the requester's reply; and
`settle`, which tells everyone how a request ended (also when it expires, from the background loop)."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp

from bot.ops import Decision
from bot.slack import ids
from bot.slack.actions import Press, button_registrar
from bot.slack.homepage import publish_home
from bot.slack.replies import Deps
from bot.slack.views import approvals, messages, safety
from bot.store import ApprovalState

log = logging.getLogger(__name__)


async def settle(deps: Deps, decision: Decision) -> None:
    """The card updated in place, the requester's reply updated, and, if the write went out, the team told."""
    request = decision.request
    await deps.notifier.update_card(request.card_channel, request.card_ts, approvals.decided_card(decision))
    async with deps.ops.speaking_to(request.requested_by):
        if decision.chain is not None:
            reply = safety.chain_started_message(decision.chain)
        else:
            reply = approvals.decided_reply(decision)
    await deps.notifier.update_reply(request.response_url, reply)
    if decision.chain is not None:
        await deps.notifier.announce(
            request.origin_channel, safety.announce_chain_started(decision.chain), request.target_server_id
        )
        return
    if request.state is ApprovalState.DONE:
        announce = messages.announce_deleted if request.action == "delete" else messages.announce_restore
        await deps.notifier.announce(
            request.origin_channel, announce(request.requested_by, request, request.decided_by)
        )


async def expire_due(deps: Deps) -> int:
    """Expire requests nobody decided in time, and fail those whose approver's bot died while carrying them out
    (never re-sent); say so on their cards and replies."""
    expired = await deps.ops.expire_approvals()
    for request in expired:
        await settle(deps, Decision(request))
    interrupted = await deps.ops.interrupted_approvals()
    for decision in interrupted:
        await settle(deps, decision)
    return len(expired) + len(interrupted)


def register(app: AsyncApp, deps: Deps) -> None:
    button = button_registrar(app, deps)

    async def decided(it: Press, decision: Decision) -> None:
        await settle(deps, decision)
        if not it.response_url:  # pressed on the Home tab: show it without the request
            await publish_home(deps, app.client, it.actor.user_id, opened=False)

    @button(ids.APPROVE, replace=False)
    async def approve(it: Press) -> None:
        await decided(it, await deps.ops.approve(it.actor, it.value))

    @button(ids.DENY, replace=False)
    async def deny(it: Press) -> None:
        await decided(it, await deps.ops.deny(it.actor, it.value))

    @button(ids.WITHDRAW, replace=False)
    async def withdraw(it: Press) -> None:
        await settle(deps, await deps.ops.withdraw(it.actor, it.value))
