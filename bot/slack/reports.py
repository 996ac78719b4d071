"""The Reporter (bot/ops/core.py) for Slack: what the background loop's work came to, told to people.

Each method is handed one result of a chore (bot/chores.py) or of a decision pressed on a card, already
claimed in the store, and tells whoever should hear of it: the requester's earlier reply is updated in
place (in their language), the team is told in the server's channels (in the team's language), and the
requester's Home tab is refreshed if they have opened it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.backup_api import Backup
from bot.clock import utc_now
from bot.i18n import Words
from bot.ops import AlertChange, ChainStep, Decision, DeleteSent, DigestReport, Operations, PolicyNews
from bot.slack.home import HomePages
from bot.slack.notifier import SlackNotifier
from bot.slack.views import approvals, messages, outcomes, policies, safety, watching
from bot.slack.views.base import by_a_pipeline, server_words
from bot.store import ApprovalState, Followed, PipelineRun

log = logging.getLogger(__name__)


class SlackReporter:
    def __init__(
        self,
        ops: Operations,
        notifier: SlackNotifier,
        home: HomePages,
        clock: Callable[[], datetime] = utc_now,
    ):
        self.ops = ops
        self.notifier = notifier
        self.home = home
        self._clock = clock

    async def deliver_kept(self) -> int:
        return await self.notifier.drain_outbox()

    async def backup_finished(self, followed: Followed, backup: Backup, manual_count: int) -> None:
        """The requester's reply updated; a completed backup announced (a failed one is an alert's card)."""
        async with self.ops.speaking_to(followed.requested_by):
            if backup.is_restorable:
                if by_a_pipeline(followed.requested_by):
                    announcement = messages.announce_pipeline_finished(followed, backup, manual_count, self._clock())
                else:
                    announcement = messages.announce_finished(followed, backup, manual_count)
                await self.notifier.announce(followed.channel_id, announcement, followed.server_id)
            await self.notifier.update_reply(followed.response_url, messages.finished_message(backup, self._clock()))
        await self.home.refresh_if_opened(followed.requested_by)

    async def follow_ended(self, followed: Followed, why: Words) -> None:
        async with self.ops.speaking_to(followed.requested_by):
            if by_a_pipeline(followed.requested_by):
                announcement = messages.announce_pipeline_ended(followed, why)
            else:
                announcement = messages.announce_ended(followed, why)
            await self.notifier.announce(followed.channel_id, announcement, followed.server_id)
            await self.notifier.update_reply(followed.response_url, messages.ended_message(followed.backup_id, why))
        await self.home.refresh_if_opened(followed.requested_by)

    async def alert_changed(self, change: AlertChange) -> None:
        """An alert's card posted in the server's channels (else the notify channel), a reminder posted, or the
        card edited in place once it healed. With no channel to post in, it is logged."""
        alert, now = change.alert, self._clock()
        if not await self.notifier.channels_for(None, alert.server_id):
            log.warning("alert %s on server %s (%s): no channel to tell", change.event, alert.server_id, alert.kind)
            return
        if change.event == "opened":
            await self.notifier.post_alert_card(alert.id, alert.server_id, watching.alert_card(alert, change.name, now))
        elif change.event == "reminded":
            await self.notifier.announce(None, watching.alert_reminder(alert, change.name, now), alert.server_id)
        else:
            await self.notifier.settle_alert_card(alert.id, watching.recovered_card(alert, change.name, now))

    async def policy_news(self, news: AlertChange | PolicyNews) -> None:
        """A policy's alert (a card, as any alert), or its pause ended on time: told in the server's channels."""
        if isinstance(news, AlertChange):
            await self.alert_changed(news)
            return
        await self.notifier.announce(None, policies.announce_resumed(None, news.policy), news.server_id)

    async def digest_ready(self, report: DigestReport) -> None:
        await self.notifier.post_to(report.digest.channel, watching.digest_message(report, self._clock()))

    async def delete_sent(self, ended: DeleteSent) -> None:
        """A delete whose undo window ended: the reply updated; the team told if it was, or may have been, done."""
        window, sent = ended.window, ended.sent
        async with self.ops.speaking_to(window.requested_by):
            reply = safety.delete_sent_message(ended)
        await self.notifier.update_reply(window.response_url, reply)
        where = server_words(window.server_id, window.server_name)
        if sent.done:
            announcement = messages.announce_deleted(window.requested_by, window, window.approved_by)
        elif sent.unknown:
            announcement = outcomes.announce_unknown(window.requested_by, sent, where, window.approved_by)
        else:
            announcement = None
        if announcement is not None:
            await self.notifier.announce(window.channel_id, announcement, window.server_id)
        await self.home.refresh_if_opened(window.requested_by)

    async def chain_moved(self, step: ChainStep) -> None:
        """A restore chain moved on (the restore sent, or stopped): the reply updated and the team told."""
        chain = step.chain
        async with self.ops.speaking_to(chain.requested_by):
            reply = safety.chain_step_message(step)
        await self.notifier.update_reply(chain.response_url, reply)
        await self.notifier.announce(chain.channel_id, safety.announce_chain_step(step), chain.target_server_id)
        await self.home.refresh_if_opened(chain.requested_by)

    async def request_settled(self, decision: Decision) -> None:
        """The card updated in place, the requester's reply updated, and, if the write went out, the team told."""
        request = decision.request
        await self.notifier.settle_card(request, approvals.decided_card(decision))
        async with self.ops.speaking_to(request.requested_by):
            if decision.chain is not None:
                reply = safety.chain_started_message(decision.chain)
            else:
                reply = approvals.decided_reply(decision)
        await self.notifier.update_reply(request.response_url, reply)
        if decision.chain is not None:
            await self.notifier.announce(
                request.origin_channel, safety.announce_chain_started(decision.chain), request.target_server_id
            )
            return
        if decision.handed_on:
            return
        if request.state is ApprovalState.DONE:
            announce = messages.announce_deleted if request.action == "delete" else messages.announce_restore
            announcement = announce(request.requested_by, request, request.decided_by)
        elif request.state is ApprovalState.UNKNOWN:
            where = server_words(request.target_server_id, request.target_server_name)
            announcement = outcomes.announce_unknown(request.requested_by, decision.sent, where, request.decided_by)
        else:
            return
        await self.notifier.announce(request.origin_channel, announcement, request.target_server_id)

    async def run_started(self, run: PipelineRun) -> None:
        """A pipeline's run, told to the server's channels (else the notify channel): the backup it took, or why
        it took none. No channel of the pipeline's own: nobody asked from Slack."""
        async with self.ops.speaking_to(None):
            announcement = messages.announce_run(run)
        await self.notifier.announce(None, announcement, run.server_id)

    async def run_settled(self, run: PipelineRun) -> None:
        """A run the background loop settled (found after all, or never sent): told like one that started."""
        await self.run_started(run)
