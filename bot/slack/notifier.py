"""How the bot speaks to Slack when nobody is waiting on a reply: announcements, cards, in-place updates.

Everything that must not be lost is durable: each announcement, approval card,
card update and Home tab publish is written to the store's outbox before it is
sent, and marked sent only once Slack accepts it. A rate limit or an
unreachable Slack leaves it in the outbox, and the background loop delivers
it when due (honouring Retry-After), also after a restart.

An approval card shows its request as it stands when Slack takes it: a card
still waiting to be posted when its request closes is posted closed, and one
whose post was on its way is updated at once after (the closed card is kept
on the request). Replies go only to response URLs on Slack's own hosts
(`ResponseUrls`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.internal_utils import get_user_agent

from bot.clock import utc_now
from bot.i18n import N_, Words, _
from bot.observe import Metrics
from bot.store import Announcement, ApprovalRequest, Store, StoreUnavailable

if TYPE_CHECKING:
    from bot.slack.home import HomePages

log = logging.getLogger(__name__)

SLACK_HOOKS_HOST = "hooks.slack.com"
SEND_CLAIM_SECONDS = 60.0
UNREACHABLE_RETRY_SECONDS = 5.0
GONE_MESSAGES = {"message_not_found", "cant_update_message", "edit_window_closed"}
DEFAULT_RETRY_SECONDS = 1.0
# Slack errors that no retry will mend: the announcement is dropped, and the person told what to do.
PERMANENT = {
    "channel_not_found": N_("the channel does not exist, or I can't see it: check BACKUPBOT_NOTIFY_CHANNEL"),
    "not_in_channel": N_("I am not in that channel: invite me there"),
    "is_archived": N_("the channel is archived: unarchive it or choose another"),
    "restricted_action": N_("posting there is restricted: ask a workspace admin"),
    "invalid_auth": N_("Slack refused the bot's token: an admin should check SLACK_BOT_TOKEN"),
    "token_revoked": N_("the bot's token was revoked: an admin should reinstall the app"),
    "missing_scope": N_("the bot lacks a scope: an admin should reinstall the app from manifest.yml"),
    "invalid_blocks": N_("Slack refused the message's layout (a bug: please report it)"),
    "msg_too_long": N_("the message was too long for Slack (a bug: please report it)"),
}


class ResponseUrls:
    """Posts to response_urls over one pooled aiohttp session, only on Slack's own hosts.

    Bolt's `respond()` opens a new HTTP session for every post; under a burst of
    commands that costs more CPU than the rest of the reply, so the bot keeps one.
    The post is what slack_sdk's webhook client sends (the message as JSON, its
    User-Agent, one more try after a connection Slack dropped), made directly:
    that client, made anew for each reply, formatted its whole body for a debug log
    line nobody sees and decoded and re-encoded the answer (~0.1 ms a reply).
    A response_url comes in the (signed) request; the bot still posts only to
    `hooks.slack.com`, or to the host of SLACK_API_URL when it points at a stand-in.
    """

    def __init__(self, slack_api_url: str | None = None) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._allowed = {SLACK_HOOKS_HOST}
        if slack_api_url:
            api = urlsplit(slack_api_url)
            if api.hostname != "slack.com":
                self._allowed.add(api.netloc)

    def allowed(self, response_url: str) -> bool:
        parts = urlsplit(response_url)
        if parts.hostname == SLACK_HOOKS_HOST:
            return parts.scheme == "https" and parts.port in (None, 443)
        return parts.scheme in ("http", "https") and parts.netloc in self._allowed

    async def send(self, response_url: str, message: dict, *, replace_original: bool | None = None) -> int:
        if not self.allowed(response_url):
            log.warning("refused to post a reply to %s: not a Slack host", urlsplit(response_url).netloc or "?")
            return 403
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        extra = {} if replace_original is None else {"replace_original": replace_original}
        body = {k: v for k, v in {"response_type": "ephemeral", **extra, **message}.items() if v is not None}
        data = json.dumps(body).encode()
        tries = 0
        while True:
            tries += 1
            try:
                async with self._session.post(response_url, data=data, headers=REPLY_HEADERS) as response:
                    await response.read()
                    return response.status
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                if tries > REPLY_RETRIES:
                    raise
                await asyncio.sleep(REPLY_RETRY_SECONDS)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


# As slack_sdk's webhook client posts (and retries: once, after a connection Slack dropped or reset).
REPLY_HEADERS = {"Content-Type": "application/json;charset=utf-8", "User-Agent": get_user_agent()}
REPLY_RETRIES = 1
REPLY_RETRY_SECONDS = 0.5


class SlackNotifier:
    """Announcements to the team (through the outbox), and in-place updates of earlier replies."""

    def __init__(
        self,
        client: AsyncWebClient,
        store: Store,
        notify_channel: str | None,
        responses: ResponseUrls,
        clock: Callable[[], datetime] = utc_now,
        metrics: Metrics | None = None,
        home: HomePages | None = None,
    ):
        self.home = home  # publishes the Home tabs kept in the outbox
        self.metrics = metrics or Metrics()
        self.client = client
        self.store = store
        self.notify_channel = notify_channel
        self.responses = responses
        self._clock = clock

    async def channels_for(self, where: str | None, server_id: int | None) -> list[str]:
        """A bound server's own channels; else the notify channel; else where it happened."""
        if server_id is not None:
            try:
                bound = await asyncio.to_thread(self.store.channels_of, server_id)
            except StoreUnavailable:
                bound = []
            if bound:
                return bound
        channel = self.notify_channel or where
        return [channel] if channel else []

    async def announce(self, where: str | None, message: dict, server_id: int | None = None) -> str | None:
        """Announce to the team (see `channels_for`); returns a problem to tell the person, if any."""
        problems = [await self._announce_in(channel, message) for channel in await self.channels_for(where, server_id)]
        return " ".join(p for p in problems if p) or None

    async def post_to(self, channel: str, message: dict) -> str | None:
        """Post in exactly this channel (a digest's own), kept until Slack takes it; a problem, if any."""
        return await self._announce_in(channel, message)

    async def _announce_in(self, channel: str, message: dict) -> str | None:
        try:
            item_id = await asyncio.to_thread(
                self.store.enqueue_announcement, channel, message, claim_seconds=SEND_CLAIM_SECONDS
            )
        except StoreUnavailable as exc:
            log.warning("outbox unavailable (%s): announcing in %s without keeping a copy", exc, channel)
            item_id = None
        return await self._post(Announcement(item_id, channel, message, 0))

    async def _post(self, item: Announcement) -> str | None:
        """Post one announcement and record how it went; returns a problem for the person, if any."""
        try:
            posted = await self.client.chat_postMessage(channel=item.channel, unfurl_links=False, **item.message)
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown_error")
            self.metrics.slack_error("chat.postMessage", error)
            if error in PERMANENT:
                log.warning("Slack refused an announcement in %s: %s", item.channel, error)
                await self._record(self.store.announcement_failed, item, error=error)
                return _("I could not announce this in <#{channel}> ({error}): {what}.").format(
                    channel=item.channel, error=error, what=_(PERMANENT[error])
                )
            await self._retry_later(item, exc, error)
            if error == "ratelimited":
                return _("Slack is rate-limiting me, so the announcement in <#{channel}> will follow shortly.").format(
                    channel=item.channel
                )
            return _("Slack did not take the announcement in <#{channel}> ({error}); I will try again shortly.").format(
                channel=item.channel, error=error
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            await self._unreachable(item, exc)
            return _("Slack could not be reached, so the announcement in <#{channel}> will follow when it can.").format(
                channel=item.channel
            )
        await self._record(self.store.announcement_sent, item)
        if item.approval_id is not None:
            await self._card_posted(item, posted.get("channel") or item.channel, posted.get("ts"))
        if item.alert_id is not None:
            await self._alert_card_posted(item, posted.get("channel") or item.channel, posted.get("ts"))
        return None

    async def _retry_later(self, item: Announcement, exc: SlackApiError, error: str) -> None:
        retry = retry_after(exc) or DEFAULT_RETRY_SECONDS * 2 ** min(item.attempts, 8)
        log.warning("%s in %s deferred %.0fs: Slack answered %s", item.kind, item.channel, retry, error)
        await self._record(self.store.announcement_retry, item, after_seconds=retry, error=error)

    async def _unreachable(self, item: Announcement, exc: Exception) -> None:
        log.warning("%s in %s deferred: Slack unreachable (%s)", item.kind, item.channel, type(exc).__name__)
        await self._record(
            self.store.announcement_retry, item, after_seconds=UNREACHABLE_RETRY_SECONDS, error="unreachable"
        )

    async def _card_posted(self, item: Announcement, channel: str, ts: str | None) -> None:
        """Remember where an approval card went, so its decision can update it in place; and if its request
        closed while the card was on its way, update it at once to the card as the request ended."""
        if not ts:
            return
        try:
            await asyncio.to_thread(self.store.approval_card_posted, item.approval_id, channel, ts)
            closed = await asyncio.to_thread(self.store.kept_card, item.approval_id)
        except StoreUnavailable as exc:
            log.warning("could not keep where approval card %s went (%s)", item.approval_id, exc)
            return
        if closed is not None and closed != item.message:
            await self._update_in_place(item.approval_id, channel, ts, closed)

    async def post_alert_card(self, alert_id: str, server_id: int, message: dict) -> None:
        """An alert's card, in the server's channels (else the notify channel): kept until Slack takes it."""
        for channel in await self.channels_for(None, server_id):
            try:
                item_id = await asyncio.to_thread(
                    self.store.enqueue_announcement,
                    channel,
                    message,
                    claim_seconds=SEND_CLAIM_SECONDS,
                    alert_id=alert_id,
                )
            except StoreUnavailable as exc:
                log.warning("outbox unavailable (%s): posting alert card without keeping a copy", exc)
                item_id = None
            await self._post(Announcement(item_id, channel, message, 0, alert_id=alert_id))

    async def _alert_card_posted(self, item: Announcement, channel: str, ts: str | None) -> None:
        """Remember where an alert's card went, so its recovery edits it; if it healed while the card was on
        its way, edit it at once."""
        if not ts:
            return
        try:
            await asyncio.to_thread(self.store.alert_card_posted, item.alert_id, channel, ts)
            healed = await asyncio.to_thread(self.store.kept_alert_card, item.alert_id)
        except StoreUnavailable as exc:
            log.warning("could not keep where alert card %s went (%s)", item.alert_id, exc)
            return
        if healed is not None and healed != item.message:
            await self._update_in_place(None, channel, ts, healed)

    async def settle_alert_card(self, alert_id: str, message: dict) -> None:
        """An alert healed: each of its cards is edited in place (kept until Slack accepts it); a card not yet
        posted is posted healed."""
        try:
            await asyncio.to_thread(self.store.keep_alert_card, alert_id, message)
            await asyncio.to_thread(self.store.rewrite_pending_alert_card, alert_id, message)
            cards = await asyncio.to_thread(self.store.alert_cards, alert_id)
        except StoreUnavailable as exc:
            log.warning("could not settle alert card %s yet (%s)", alert_id, exc)
            return
        for channel, ts in cards:
            await self._update_in_place(None, channel, ts, message)

    async def settle_card(self, request: ApprovalRequest, message: dict) -> None:
        """A request closed: its card, as it ended, replaces the live one — updated in place if Slack has it,
        else posted so when its post goes out. Kept until Slack accepts it."""
        try:
            await asyncio.to_thread(self.store.keep_card, request.id, message)
            request = await asyncio.to_thread(self.store.approval, request.id) or request
        except StoreUnavailable as exc:
            log.warning("could not keep approval card %s as it ended (%s)", request.id, exc)
        if request.card_ts:
            await self._update_in_place(request.id, request.card_channel, request.card_ts, message)
            return
        with contextlib.suppress(StoreUnavailable):
            await asyncio.to_thread(self.store.rewrite_pending_card, request.id, message)

    async def _update_in_place(self, approval_id: str | None, channel: str, ts: str, message: dict) -> None:
        try:
            item_id = await asyncio.to_thread(
                self.store.enqueue_announcement,
                channel,
                message,
                claim_seconds=SEND_CLAIM_SECONDS,
                approval_id=approval_id,
                kind="update",
                ts=ts,
            )
        except StoreUnavailable as exc:
            log.warning("outbox unavailable (%s): updating card %s without keeping a copy", exc, approval_id)
            item_id = None
        await self._update(Announcement(item_id, channel, message, 0, approval_id, "update", ts))

    async def _update(self, item: Announcement) -> None:
        """Update a posted card in place (a channel message, so chat.update can); kept until Slack accepts it."""
        try:
            await self.client.chat_update(channel=item.channel, ts=item.ts, **item.message)
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown_error")
            self.metrics.slack_error("chat.update", error)
            if error in PERMANENT or error in GONE_MESSAGES:
                log.warning("Slack refused to update a card in %s: %s", item.channel, error)
                await self._record(self.store.announcement_failed, item, error=error)
                return
            await self._retry_later(item, exc, error)
            return
        except (aiohttp.ClientError, TimeoutError) as exc:
            await self._unreachable(item, exc)
            return
        await self._record(self.store.announcement_sent, item)

    async def post_card(
        self, where: str | None, approval_id: str, message: dict, server_id: int | None = None
    ) -> str | None:
        """Post an approval card like an announcement (kept until Slack takes it); returns a problem, if any."""
        channels = await self.channels_for(where, server_id)
        if not channels:
            return _("There is no channel for the approval card: set BACKUPBOT_NOTIFY_CHANNEL.")
        channel = channels[0]
        try:
            item_id = await asyncio.to_thread(
                self.store.enqueue_announcement,
                channel,
                message,
                claim_seconds=SEND_CLAIM_SECONDS,
                approval_id=approval_id,
            )
        except StoreUnavailable as exc:
            log.warning("outbox unavailable (%s): posting approval card without keeping a copy", exc)
            item_id = None
        return await self._post(Announcement(item_id, channel, message, 0, approval_id))

    async def _record(self, transition, item: Announcement, **fields) -> None:
        if item.id is None:
            return
        try:
            await asyncio.to_thread(transition, item.id, **fields)
        except StoreUnavailable as exc:
            log.warning("could not record announcement %s's state (%s); its claim will lapse", item.id, exc)

    async def drain_outbox(self) -> int:
        """Deliver the announcements that are due; returns how many were tried."""
        try:
            due = await asyncio.to_thread(self.store.claim_due_announcements, claim_seconds=SEND_CLAIM_SECONDS)
        except StoreUnavailable as exc:
            log.info("outbox not readable this round: %s", exc)
            return 0
        for item in due:
            await self._deliver(item)
        return len(due)

    async def _deliver(self, item: Announcement) -> None:
        if item.kind == "update":
            await self._update(item)
        elif item.kind == "home" and self.home is not None:
            await self._record(self.store.announcement_sent, item)
            await self.home.publish(item.user_id, opened=False)
        else:
            await self._post(item)

    async def can_post(self, channel_id: str, message: dict) -> Words | None:
        """Post `message` in the channel now (not kept: this is a check); None if Slack took it, else why not."""
        return await post_once(self.client, channel_id, message, self.metrics)

    async def update_reply(self, response_url: str | None, message: dict) -> None:
        if not response_url:
            return
        try:
            status = await self.responses.send(response_url, message, replace_original=True)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("could not update an earlier reply: %s", type(exc).__name__)
            return
        if status != 200:
            log.info("could not update an earlier reply (%s): it may have expired", status)


# Why Slack would not take a message in a channel, for the admin binding a server to it.
NOT_POSTABLE = {
    "channel_not_found": N_("there is no such channel, or I can't see it: a private channel must invite me first"),
    "not_in_channel": N_("I am not in that channel: invite me there first"),
    "is_archived": N_("the channel is archived"),
    "restricted_action": N_("posting there is restricted: ask a workspace admin"),
}


async def post_once(client: AsyncWebClient, channel_id: str, message: dict, metrics: Metrics | None = None):
    """Post a message now and say why not if Slack would not take it (None: it did)."""
    try:
        await client.chat_postMessage(channel=channel_id, unfurl_links=False, **message)
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown_error")
        if metrics is not None:
            metrics.slack_error("chat.postMessage", error)
        if error in NOT_POSTABLE:
            return Words(NOT_POSTABLE[error])
        return Words(N_("Slack answered {error}"), error=error)
    except (aiohttp.ClientError, TimeoutError):
        return Words(N_("Slack could not be reached"))
    return None


def retry_after(exc: SlackApiError) -> float | None:
    headers = getattr(exc.response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class ShortRateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's rate-limit retry, used only when Slack asks for a short wait.

    A longer Retry-After is not slept through while a person waits for their
    reply: the announcement stays in the outbox, due when Slack said.
    """

    def __init__(self, max_wait_seconds: float = 2.0):
        super().__init__(max_retry_count=1)
        self.max_wait_seconds = max_wait_seconds

    async def _can_retry_async(self, *, state, request, response=None, error=None) -> bool:
        if response is None or response.status_code != 429:
            return False
        values = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), ["1"])
        try:
            return float(values[0]) <= self.max_wait_seconds
        except (TypeError, ValueError, IndexError):
            return False


def slack_retry_handlers() -> list:
    """What the Web API client retries by itself: a short rate limit, and a dropped connection, once each."""
    return [ShortRateLimitRetry(), AsyncConnectionErrorRetryHandler(max_retry_count=1)]
