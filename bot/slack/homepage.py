"""Publishing a person's Home tab (views.publish): on opening it, on Refresh, after their own changes,
and with a note on top when a press made from the Home tab has something to say (it has no response_url)."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.backup_api import BackupApiError
from bot.ops import Actor
from bot.slack.views.base import flatten_text
from bot.slack.views.home import home_view
from bot.store import StoreUnavailable

log = logging.getLogger(__name__)


async def publish_home(deps, client, user_id: str, note: dict | None = None, *, opened: bool = True) -> None:
    """Build and publish `user_id`'s Home tab; `note` (a message) is shown on top.

    `opened`: the person asked for it (audited as a read); else the bot refreshes it after their change.
    """
    try:
        home = await deps.ops.home(Actor(user_id), audit=opened)
        text = flatten_text(note["blocks"]) if note else None
        async with deps.ops.speaking_to(user_id):
            view = home_view(home, deps.clock(), text)
        await client.views_publish(user_id=user_id, view=view)
    except SlackApiError as exc:
        deps.metrics.slack_error("views.publish", exc.response.get("error"))
        log.warning("could not publish the Home tab: %s", exc.response.get("error"))
    except (StoreUnavailable, BackupApiError) as exc:
        log.warning("could not build the Home tab: %s", exc)
