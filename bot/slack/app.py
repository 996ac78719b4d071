"""create_app: the Bolt wiring, and nothing else.

Listeners (commands.py, actions.py) are thin: ack, call one use case, render,
reply through `replies.answer`. The app's error handler catches what escapes a
listener before it could answer.
"""

from __future__ import annotations

import logging

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.slack import actions, commands, home, policy_form
from bot.slack.replies import Deps
from bot.slack.views.errors import error_message

log = logging.getLogger(__name__)


class _SameTokenWarning(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and warns it is unused beside our client: the same token, so no news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


logging.getLogger("slack_bolt.AsyncApp").addFilter(_SameTokenWarning())


def create_app(
    settings: Settings, deps: Deps, client: AsyncWebClient, *, process_before_response: bool = False
) -> AsyncApp:
    app = AsyncApp(
        name="vps-backup-bot",  # without a name, Bolt inspects the whole call stack to make one up (~70 ms)
        client=client,
        signing_secret=settings.slack_signing_secret,
        process_before_response=process_before_response,
        raise_error_for_unhandled_request=False,
    )
    commands.register(app, deps)
    actions.register(app, deps)
    home.register(app, deps)
    policy_form.register(app, deps)

    @app.error
    async def on_error(error: Exception, body: dict) -> None:
        """Say so through the request's response_url — through the bot's own client, so only to Slack's hosts
        (Bolt's `respond` would post anywhere) — and never fail again while saying it."""
        log.error("a request failed before its listener could answer: %s", type(error).__name__, exc_info=error)
        response_url = _response_url(body)
        if response_url:
            try:
                await deps.responses.send(response_url, error_message(error))
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("could not tell the person about it: %s", type(exc).__name__)

    return app


def _response_url(body: dict) -> str | None:
    """Where to answer: a command's or a press's response_url, else a form's first (as Bolt's `respond` picks)."""
    if isinstance(body.get("response_url"), str):
        return body["response_url"]
    urls = body.get("response_urls")
    first = urls[0] if isinstance(urls, list) and urls and isinstance(urls[0], dict) else {}
    url = first.get("response_url")
    return url if isinstance(url, str) else None
