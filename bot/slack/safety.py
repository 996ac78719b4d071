"""The safety nets' background reports: the background loop drives the work (ops), these say how it went.

`send_due_deletes` runs every tick: deletes whose undo window ended are sent
once, their reply updated and the team told. `advance_chain` is handed each
restore waiting on its safety backup, every round: once the safety backup
completed, the restore is sent and the reply and the team hear of it.
`report_interrupted` tells the requester of a chain whose process died mid-step.
"""

from __future__ import annotations

from bot.backup_api import Backup
from bot.ops import ChainStep
from bot.slack.replies import Deps
from bot.slack.views import messages, safety
from bot.store import RestoreChain


async def send_due_deletes(deps: Deps) -> int:
    sent = await deps.ops.send_due_deletes()
    for result in sent:
        window = result.window
        async with deps.ops.speaking_to(window.requested_by):
            reply = safety.delete_sent_message(result)
        await deps.notifier.update_reply(window.response_url, reply)
        if result.why is None:
            await deps.notifier.announce(
                window.channel_id,
                messages.announce_deleted(window.requested_by, window, window.approved_by),
                window.server_id,
            )
        if deps.home_refresh is not None:
            await deps.home_refresh(window.requested_by)
    return len(sent)


async def tell_step(deps: Deps, step: ChainStep) -> None:
    chain = step.chain
    async with deps.ops.speaking_to(chain.requested_by):
        reply = safety.chain_step_message(step)
    await deps.notifier.update_reply(chain.response_url, reply)
    await deps.notifier.announce(chain.channel_id, safety.announce_chain_step(step), chain.target_server_id)
    if deps.home_refresh is not None:
        await deps.home_refresh(chain.requested_by)


async def advance_chain(deps: Deps, chain: RestoreChain, safety_backup: Backup | None) -> None:
    step = await deps.ops.advance_chain(chain, safety_backup)
    if step is not None:
        await tell_step(deps, step)


async def report_interrupted(deps: Deps) -> int:
    steps = await deps.ops.interrupted_chains()
    for step in steps:
        await tell_step(deps, step)
    return len(steps)
