"""How the bot answers: `answer()` (one use case, one reply, refusals put into words), `Outcome`,
`Deps`, the pooled response_url client and the notifier that announces to the team."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.backup_api import Backup, BackupApiError
from bot.ops import Operations, OpsError
from bot.parsing import UsageError
from bot.slack.views import messages
from bot.slack.views.base import with_note
from bot.slack.views.errors import error_message
from bot.store import Followed

log = logging.getLogger(__name__)


Send = Callable[[dict], Awaitable[object]]


def _now() -> datetime:
    return datetime.now(UTC)


class ResponseUrls:
    """Posts to response_urls over one pooled aiohttp session.

    Bolt's `respond()` opens a new HTTP session for every post; under a burst of
    commands that costs more CPU than the rest of the reply, so the bot keeps one.
    """

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def send(self, response_url: str, message: dict, *, replace_original: bool | None = None) -> int:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        extra = {} if replace_original is None else {"replace_original": replace_original}
        client = AsyncWebhookClient(response_url, session=self._session)
        response = await client.send(response_type="ephemeral", **extra, **message)
        return response.status_code

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class SlackNotifier:
    """Announcements to the team, and in-place updates of earlier replies."""

    def __init__(
        self,
        client: AsyncWebClient,
        notify_channel: str | None,
        responses: ResponseUrls,
        clock: Callable[[], datetime] = _now,
    ):
        self.client = client
        self.notify_channel = notify_channel
        self.responses = responses
        self._clock = clock

    async def announce(self, where: str | None, message: dict) -> str | None:
        """Post to the notify channel, else where it happened; returns a problem to tell the person, if any."""
        channel = self.notify_channel or where
        if not channel:
            return None
        try:
            await self.client.chat_postMessage(channel=channel, unfurl_links=False, **message)
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown_error")
            log.warning("could not announce in %s: %s", channel, error)
            return f"I could not announce this in <#{channel}> ({error}): invite me there, or tell the team."
        return None

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

    async def backup_finished(self, followed: Followed, backup: Backup, manual_count: int) -> None:
        await self.update_reply(followed.response_url, messages.finished_message(backup, self._clock()))
        await self.announce(followed.channel_id, messages.announce_finished(followed, backup, manual_count))

    async def follow_ended(self, followed: Followed, why: str) -> None:
        await self.update_reply(followed.response_url, messages.ended_message(followed.backup_id, why))
        await self.announce(followed.channel_id, messages.announce_ended(followed, why))

    async def automatic_failed(self, backup: Backup) -> None:
        """Only the notify channel hears of these: no one asked, so there is no other channel."""
        if not self.notify_channel:
            log.warning("automatic backup %s of server %s is %s", backup.id, backup.server.id, backup.status)
            return
        await self.announce(None, messages.announce_automatic_failed(backup, self._clock()))


@dataclass
class Outcome:
    """What a listener sends: the reply, and what to announce to the team."""

    reply: dict
    announcements: list[dict] = field(default_factory=list)


@dataclass
class Deps:
    ops: Operations
    notifier: SlackNotifier
    responses: ResponseUrls
    clock: Callable[[], datetime] = _now


EXPECTED_ERRORS = (OpsError, BackupApiError, UsageError)


async def answer(
    deps: Deps,
    work: Callable[[], Awaitable[Outcome]],
    send: Send,
    *,
    send_error: Send | None = None,
    channel_id: str | None = None,
) -> None:
    """Run one use case and reply; a refusal or failure is always put into words for the person."""
    report = send if send_error is None else send_error
    try:
        outcome = await work()
    except EXPECTED_ERRORS as exc:
        await report(error_message(exc))
        return
    except Exception as exc:
        ref = secrets.token_hex(3)
        log.exception("unexpected error (ref %s)", ref)
        await report(with_note(error_message(exc), f"Reference for the admins: `{ref}`"))
        return
    reply = outcome.reply
    for announcement in outcome.announcements:
        problem = await deps.notifier.announce(channel_id, announcement)
        if problem:
            reply = with_note(reply, problem)
    await send(reply)
