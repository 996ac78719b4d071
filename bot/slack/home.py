"""The Home tab: `HomePages` publishes a person's tab (views.publish) — on opening it, on Refresh, after their
own changes, and with a note on top when a press made from the tab has something to say (it has no
response_url) — and `register` adds its listeners: `app_home_opened` (each event handled once, even when
Slack retries it), Refresh, and Take a backup (a form asking for a description, then the same use case as
`/backup create`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.backup_api import BackupApiError
from bot.observe import Metrics
from bot.ops import Actor, Operations, ReplyTo
from bot.parsing import parse_id, plain_description
from bot.slack import ids
from bot.slack.actions import Press, button_registrar
from bot.slack.commands import created_outcome
from bot.slack.notifier import UNREACHABLE_RETRY_SECONDS, retry_after
from bot.slack.policy_form import open_form
from bot.slack.replies import Deps, Outcome, answer
from bot.slack.requests import submitted_text
from bot.slack.views import messages, modals
from bot.slack.views.base import flatten_text
from bot.slack.views.home import home_view
from bot.store import StoreUnavailable

log = logging.getLogger(__name__)


class HomePages:
    """Builds and publishes Home tabs; needs only the use cases and the Web API client."""

    def __init__(self, ops: Operations, client: AsyncWebClient, clock: Callable[[], datetime], metrics: Metrics):
        self.ops = ops
        self.client = client
        self._clock = clock
        self.metrics = metrics

    async def publish(self, user_id: str, note: dict | None = None, *, opened: bool = True) -> None:
        """Build and publish `user_id`'s Home tab; `note` (a message) is shown on top.

        `opened`: the person asked for it (audited as a read); else the bot refreshes it after their change.
        """
        try:
            home = await self.ops.home(Actor(user_id), audit=opened)
            text = flatten_text(note["blocks"]) if note else None
            async with self.ops.speaking_to(user_id):
                view = home_view(home, self._clock(), text)
            await self.client.views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            error = exc.response.get("error")
            self.metrics.slack_error("views.publish", error)
            log.warning("could not publish the Home tab: %s", error)
            if error == "ratelimited":
                await self._publish_later(user_id, retry_after(exc) or 1.0)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not publish the Home tab: Slack unreachable (%s)", type(exc).__name__)
            await self._publish_later(user_id, UNREACHABLE_RETRY_SECONDS)
        except (StoreUnavailable, BackupApiError) as exc:
            log.warning("could not build the Home tab: %s", exc)

    async def _publish_later(self, user_id: str, seconds: float) -> None:
        """Slack said not now: the tab is published again (built afresh) when it said, from the outbox."""
        try:
            await asyncio.to_thread(
                self.ops.store.enqueue_announcement, "", {}, kind="home", user_id=user_id, after_seconds=seconds
            )
        except StoreUnavailable as exc:
            log.warning("could not keep the Home tab of %s to publish later: %s", user_id, exc)

    async def refresh_if_opened(self, user_id: str) -> None:
        """After the person's own change: only for someone who has looked at their Home tab."""
        try:
            if not await asyncio.to_thread(self.ops.store.has_opened_home, user_id):
                return
        except StoreUnavailable:
            return
        await self.publish(user_id, opened=False)


def register(app: AsyncApp, deps: Deps) -> None:
    button = button_registrar(app, deps)

    @app.event("app_home_opened")
    async def home_opened(event: dict, body: dict) -> None:
        if event.get("tab") != "home" or not event.get("user"):
            return
        event_id = str(body.get("event_id") or "")
        try:
            first = not event_id or await asyncio.to_thread(deps.ops.store.first_time, f"event:{event_id}")
        except StoreUnavailable:
            first = True
        if not first:
            log.info("event %s delivered again: not handled twice", event_id)
            return
        with contextlib.suppress(StoreUnavailable):
            await asyncio.to_thread(deps.ops.store.home_opened, event["user"])
        await deps.home.publish(event["user"])

    @button(ids.HOME_REFRESH, replace=False)
    async def refresh(it: Press) -> None:
        await deps.home.publish(it.actor.user_id)

    @button(ids.HOME_CREATE, replace=False)
    async def take_a_backup(it: Press) -> Outcome | None:
        return await open_create_form(it, parse_id(it.value, "server"))

    @button(ids.HOME_SERVER_MENU, replace=False)
    async def server_menu(it: Press) -> Outcome | None:
        """A server's menu: take a backup (its form), or its backup policy (the policy form)."""
        what, _sep, server = it.value.partition(":")
        server_id = parse_id(server, "server")
        if what == "policy":
            return await open_form(deps, app.client, it.actor, server_id, it.trigger_id, it.reply_to)
        return await open_create_form(it, server_id)

    async def open_create_form(it: Press, server_id: int) -> Outcome | None:
        names = await asyncio.to_thread(deps.ops.store.server_names)
        try:
            await app.client.views_open(
                trigger_id=it.trigger_id, view=modals.create_modal(server_id, names.get(server_id))
            )
        except SlackApiError as exc:
            return Outcome(messages.modal_not_opened_message(exc.response.get("error", "unknown_error")))
        return None

    @app.view(ids.CREATE_MODAL)
    async def create_submitted(ack, body, view) -> None:
        await ack()
        actor = Actor(body["user"]["id"])
        typed = submitted_text(view, ids.CREATE_DESCRIPTION_BLOCK, ids.CREATE_DESCRIPTION_ACTION)
        description = plain_description(typed).strip()

        async def work() -> Outcome:
            server_id = parse_id(str(view.get("private_metadata") or ""), "server")
            backup = await deps.ops.create_backup(actor, server_id, description[:255], follow=ReplyTo(None, None))
            return created_outcome(deps, actor.user_id, backup)

        async def on_home(message: dict) -> None:
            await deps.home.publish(actor.user_id, note=message)

        await answer(deps, work, on_home, kind="view", user_id=actor.user_id, refresh_home=False)
