"""Builds the running bot from Settings, once (Flask's create_app pattern): everything is handed in.

`build_core` makes what the bot and the CLI share — the store, the backup API
client and the use cases, with the settings' rules (approval time, undo
window, language) — so a command typed at the shell keeps the same rules as
one typed in Slack. `build_runtime` adds Slack (the Web API client, the
notifier, the Home tab, the reporter, the Bolt app) and the background loop.
`serve`, `socket`, `console` and the tests all start from `build_runtime`,
passing a transport (the simulator) or a Slack client where they need to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx

from bot import i18n
from bot.backup_api import BackupApi
from bot.chores import Background, standard_chores
from bot.clock import utc_now
from bot.config import Settings
from bot.durable import DurableWrites
from bot.follower import Follower
from bot.observe import Metrics
from bot.ops import Operations
from bot.store import Store, open_store

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.replies import Deps

log = logging.getLogger(__name__)

FINAL_OUTBOX_SECONDS = 5.0
FINAL_WRITES_SECONDS = 5.0
REFUSALS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})


class SlackRefused(Exception):
    """Slack turned the bot's credentials down at start; the message is safe to print."""


class CannotStart(Exception):
    """The bot cannot start (a port in use, Slack unreachable); the message is one line, safe to print."""


@dataclass
class Core:
    """What the bot and the CLI share: the store, the backup API client, the use cases."""

    settings: Settings
    store: Store
    api: BackupApi
    ops: Operations
    metrics: Metrics

    async def aclose(self) -> None:
        """Write what the store kept waiting, close the API client and the store."""
        await self.ops.durable.drain(FINAL_WRITES_SECONDS)
        await self.api.aclose()
        self.store.close()


def build_core(
    settings: Settings,
    *,
    api_transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], datetime] = utc_now,
    api_options: dict | None = None,
    background_seconds: float = 1.0,
) -> Core:
    """The store (BACKUPBOT_DB), the backup API client and the use cases, with the settings' rules."""
    store = open_store(settings.db_path, clock=clock)
    metrics = Metrics()
    api = BackupApi(
        settings.vps_api_url,
        settings.vps_api_token or "",
        transport=api_transport,
        observer=metrics.api_call,
        **(api_options or {}),
    )
    ops = Operations(
        api,
        store,
        admins=settings.admins,
        clock=clock,
        approval_ttl=timedelta(minutes=settings.approval_minutes),
        delete_grace=timedelta(seconds=settings.delete_grace_seconds),
        language=settings.language,
        durable=DurableWrites(retry_seconds=background_seconds, store=store),
        stale_hours=settings.stale_hours,
        timezone=settings.timezone,
        reserved_slots=settings.reserved_slots,
    )
    return Core(settings, store, api, ops, metrics)


@dataclass
class Runtime:
    settings: Settings
    store: Store
    api: BackupApi
    ops: Operations
    app: AsyncApp
    deps: Deps
    background: Background
    core: Core

    async def start(self) -> None:
        """Start the background loop; what it says to the team is in the team's language."""
        with i18n.speaking(self.settings.language, self.settings.language):
            self.background.start()

    async def check_slack_token(self) -> None:
        """Ask Slack who the bot is: a refused token or an unreachable Slack stops the start (one line)."""
        import aiohttp
        from slack_sdk.errors import SlackApiError

        try:
            await self.app.client.auth_test()
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error in REFUSALS:
                raise SlackRefused(f"Slack refused SLACK_BOT_TOKEN ({error})") from None
            log.warning("auth.test at start failed (%s); going on", error)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CannotStart(
                f"could not reach Slack at {self.settings.slack_api_url} ({type(exc).__name__}): "
                "check the network and SLACK_API_URL"
            ) from None

    async def drain(self) -> bool:
        """Let acknowledged work finish within BACKUPBOT_SHUTDOWN_SECONDS; True if all of it did."""
        return await self.deps.inflight.drain(self.settings.shutdown_seconds)

    async def aclose(self) -> None:
        """Stop the background loop, hand over what is due, write what is kept, close the clients."""
        await self.background.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.deps.notifier.drain_outbox(), FINAL_OUTBOX_SECONDS)
        await self.deps.responses.aclose()
        await self.core.aclose()


def build_runtime(
    settings: Settings,
    *,
    api_transport: httpx.AsyncBaseTransport | None = None,
    slack_client: AsyncWebClient | None = None,
    process_before_response: bool = False,
    clock: Callable[[], datetime] = utc_now,
    api_options: dict | None = None,
    background_seconds: float = 1.0,
) -> Runtime:
    """Everything the bot runs on, put together. `background_seconds`: how often the loop's chores run and
    writes kept from a busy store are retried (once a second; tests that wait on them make it shorter)."""
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.app import create_app
    from bot.slack.home import HomePages
    from bot.slack.notifier import ResponseUrls, SlackNotifier, slack_retry_handlers
    from bot.slack.replies import Deps
    from bot.slack.reports import SlackReporter

    for language in i18n.LANGUAGES:  # a damaged catalog stops the start, not a request later
        i18n.translations(language)
    core = build_core(
        settings,
        api_transport=api_transport,
        clock=clock,
        api_options=api_options,
        background_seconds=background_seconds,
    )
    store, api, ops, metrics = core.store, core.api, core.ops, core.metrics
    metrics.watch_work(store.pending_work)
    metrics.watch_backups(ops.backup_ages, store.open_alert_counts)
    client = slack_client or AsyncWebClient(
        token=settings.slack_bot_token, base_url=settings.slack_api_url, retry_handlers=slack_retry_handlers()
    )
    responses = ResponseUrls(settings.slack_api_url)
    home = HomePages(ops, client, clock, metrics)
    notifier = SlackNotifier(client, store, settings.notify_channel, responses, clock, metrics, home=home)
    reporter = SlackReporter(ops, notifier, home, clock)
    deps = Deps(
        ops=ops, notifier=notifier, responses=responses, home=home, reporter=reporter, clock=clock, metrics=metrics
    )
    app = create_app(settings, deps, client, process_before_response=process_before_response)
    follower = Follower(api, store, reporter, ops=ops, clock=clock)
    background = Background(
        store,
        standard_chores(ops, follower, reporter, poll_seconds=settings.poll_seconds),
        tick=background_seconds,
        lease_seconds=2 * settings.poll_seconds,
    )
    return Runtime(settings, store, api, ops, app, deps, background, core)
