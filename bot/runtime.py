"""Builds the running bot from Settings: store, API client, use cases, Bolt app, follower.

The one place dependencies are put together (Flask's create_app pattern):
`serve`, `socket`, `console` and the tests all start from `build_runtime`,
passing a transport (the simulator) or a Slack client where they need to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import Deps, create_app
from bot.backup_api import BackupApi
from bot.config import Settings
from bot.follower import Follower
from bot.ops import Operations
from bot.store import Store


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    store: Store
    api: BackupApi
    ops: Operations
    app: AsyncApp
    deps: Deps
    follower: Follower

    async def start(self) -> None:
        self.follower.start()

    async def aclose(self) -> None:
        await self.follower.stop()
        await self.deps.responses.aclose()
        await self.api.aclose()
        self.store.close()


def build_runtime(
    settings: Settings,
    *,
    api_transport: httpx.AsyncBaseTransport | None = None,
    slack_client: AsyncWebClient | None = None,
    process_before_response: bool = False,
    clock: Callable[[], datetime] = _now,
    api_options: dict | None = None,
) -> Runtime:
    store = Store(settings.db_path, clock=clock)
    api = BackupApi(settings.vps_api_url, settings.vps_api_token or "", transport=api_transport, **(api_options or {}))
    ops = Operations(api, store, admins=settings.admins, clock=clock)
    app, deps = create_app(
        settings, ops, client=slack_client, process_before_response=process_before_response, clock=clock
    )
    follower = Follower(api, store, deps.notifier, poll_seconds=settings.poll_seconds, clock=clock)
    return Runtime(settings, store, api, ops, app, deps, follower)
