"""How the bot answers a person: `answer()` runs one use case and replies, putting any refusal or failure
into words; `Outcome` is what a listener sends; `Deps` is what listeners are built with."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import aiohttp
from slack_sdk.errors import SlackApiError

from bot import observe
from bot.backup_api import BackupApiError
from bot.clock import utc_now
from bot.i18n import _
from bot.inflight import InFlight
from bot.observe import Metrics
from bot.ops import Operations, OpsError
from bot.parsing import UsageError
from bot.slack.notifier import ResponseUrls, SlackNotifier
from bot.slack.views.base import with_note
from bot.slack.views.errors import error_message, interrupted_message
from bot.store import StoreUnavailable

if TYPE_CHECKING:
    from bot.slack.home import HomePages
    from bot.slack.reports import SlackReporter

log = logging.getLogger(__name__)

Send = Callable[[dict], Awaitable[object]]


@dataclass
class Outcome:
    """What a listener sends: the reply, and what to announce to the team."""

    reply: dict
    announcements: list[dict] = field(default_factory=list)
    card: tuple[str, dict] | None = None  # an approval card to post: (request id, message)
    server_id: int | None = None  # whose channels hear the announcements, if it is bound to some


@dataclass
class Deps:
    """What the listeners are built with (bot/runtime.py makes it)."""

    ops: Operations
    notifier: SlackNotifier
    responses: ResponseUrls
    home: HomePages
    reporter: SlackReporter
    inflight: InFlight = field(default_factory=InFlight)
    clock: Callable[[], datetime] = utc_now
    metrics: Metrics = field(default_factory=Metrics)


CHANGES = ("create", "delete", "restore")  # a person's own changes refresh their Home tab
EXPECTED_ERRORS = (OpsError, BackupApiError, UsageError, StoreUnavailable)
INTERRUPTED_REPLY_SECONDS = 3.0


async def answer(
    deps: Deps,
    work: Callable[[], Awaitable[Outcome | None]],
    send: Send,
    *,
    send_error: Send | None = None,
    channel_id: str | None = None,
    kind: str = "action",
    user_id: str = "",
    refresh_home: bool = True,
) -> None:
    """Run one use case and reply; a refusal or failure is always put into words for the person.

    The work counts as in flight until the reply is sent, so a shutdown waits for it.
    Work that has already shown the person something (a modal) returns None. The request
    is counted by `kind` and by how its use case ended; its log lines carry its request ID.
    A person's own change refreshes their Home tab, unless the reply already went there.
    """
    with observe.serving(kind, user_id) as context:
        try:
            async with deps.ops.speaking_to(user_id):
                await _answer(deps, work, send, send_error, channel_id, context.request_id)
        finally:
            deps.metrics.request_served(kind, context.outcome or "done")
        if refresh_home and context.outcome == "done" and context.action in CHANGES and user_id:
            await deps.home.refresh_if_opened(user_id)


async def _answer(deps: Deps, work, send: Send, send_error: Send | None, channel_id: str | None, ref: str) -> None:
    report = send if send_error is None else send_error
    async with deps.inflight.track():
        try:
            outcome = await work()
        except EXPECTED_ERRORS as exc:
            if isinstance(exc, BackupApiError | StoreUnavailable):
                log.warning("%s: %s", type(exc).__name__, exc)
            context = observe.current()
            if context is not None and not context.outcome:  # refused before any attempt was audited
                observe.note_attempt("", "failed" if isinstance(exc, BackupApiError | StoreUnavailable) else "denied")
            await _deliver(report, error_message(exc))
            return
        except asyncio.CancelledError:
            observe.note_attempt("", "failed")
            await asyncio.wait_for(_deliver(report, interrupted_message()), INTERRUPTED_REPLY_SECONDS)
            raise
        except Exception as exc:
            observe.note_attempt("", "failed")
            log.exception("unexpected error (ref %s)", ref)
            await _deliver(
                report, with_note(error_message(exc), _("Reference for the admins: `{ref}`").format(ref=ref))
            )
            return
        if outcome is None:
            return
        reply = outcome.reply
        problems = [await deps.notifier.announce(channel_id, a, outcome.server_id) for a in outcome.announcements]
        if outcome.card is not None:
            problems.append(await deps.notifier.post_card(channel_id, *outcome.card, outcome.server_id))
        for problem in filter(None, problems):
            reply = with_note(reply, problem)
        await _deliver(send, reply)


async def _deliver(send: Send, message: dict) -> None:
    """Send a reply; if Slack can't be reached, say so in the log (there is nowhere else to say it)."""
    try:
        await send(message)
    except (aiohttp.ClientError, TimeoutError, SlackApiError) as exc:
        log.warning("could not deliver a reply to the person: %s", type(exc).__name__)
