"""`serve` (HTTP, on uvicorn) and `socket` (Socket Mode): two doors to the same app.

The ASGI app answers `POST /slack/events` through Bolt, `GET /healthz` with
200 once started, and starts the follower on the ASGI lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn
from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.runtime import Runtime, SlackRefused, build_runtime

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"


class BotAsgi:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.slack = AsyncSlackRequestHandler(runtime.app, path=EVENTS_PATH)
        self.ready = False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http" and scope["path"] == "/healthz":
            status = 200 if self.ready else 503
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "http.response.body", "body": b"ok" if self.ready else b"starting"})
        elif scope["type"] == "http":
            await self.slack(scope, receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.runtime.check_slack_token()
                except SlackRefused as exc:
                    log.error("%s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await self.runtime.start()
                self.ready = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.ready = False
                await self.runtime.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def run_http(settings: Settings, host: str = "0.0.0.0") -> None:
    runtime = build_runtime(settings)
    log.info("serving Slack requests on http://%s:%s%s", host, settings.port, EVENTS_PATH)
    uvicorn.run(
        BotAsgi(runtime),
        host=host,
        port=settings.port,
        lifespan="on",
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=10,
    )


async def socket_main(settings: Settings, runtime: Runtime | None = None) -> None:
    runtime = runtime or build_runtime(settings)
    handler = AsyncSocketModeHandler(runtime.app, settings.slack_app_token)
    await runtime.start()
    try:
        try:
            # The SDK retries a refused connection forever; ask once ourselves, so a bad token stops the start.
            opened = await runtime.app.client.apps_connections_open(app_token=settings.slack_app_token)
        except SlackApiError as exc:
            raise SlackRefused(
                f"Slack refused to open a Socket Mode connection ({exc.response.get('error')}): "
                "check SLACK_APP_TOKEN and SLACK_BOT_TOKEN"
            ) from None
        handler.client.wss_uri = opened["url"]
        await handler.connect_async()
        log.info("connected to Slack in Socket Mode")
        await asyncio.Event().wait()
    finally:
        await handler.close_async()
        await runtime.aclose()


def run_socket(settings: Settings) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(socket_main(settings))
