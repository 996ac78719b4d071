"""Buttons and the restore modal: ack, one use case, render, reply.

Permission is checked for whoever presses, at the press (the use cases do
it). Results replace the message that carried the button; refusals come as
a new ephemeral message, so a second press never hides what the first did.
"""

from __future__ import annotations

import json
import re

from slack_bolt.async_app import AsyncApp

from bot.ops import Actor, ConfirmationMismatch, OpsError
from bot.parsing import UsageError, parse_id
from bot.policy import Action
from bot.slack import ids
from bot.slack.replies import Deps, Outcome, answer
from bot.slack.views import messages, modals
from bot.slack.views.errors import error_message, mismatch_text


def _channel(body: dict) -> str | None:
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")


def _backup_id(action: dict) -> int:
    return parse_id(str(action.get("value", "")), "backup")


def register(app: AsyncApp, deps: Deps) -> None:
    ops = deps.ops

    async def press(body: dict, work, *, replace: bool) -> None:
        response_url = body["response_url"]

        async def send(message: dict) -> None:
            await deps.responses.send(response_url, message, replace_original=replace)

        async def send_error(message: dict) -> None:
            await deps.responses.send(response_url, message, replace_original=False)

        await answer(deps, work, send, send_error=send_error, channel_id=_channel(body))

    @app.action(ids.DELETE_REQUEST)
    async def delete_requested(ack, body, action) -> None:
        await ack()
        actor = Actor(body["user"]["id"])

        async def work() -> Outcome:
            conf = await ops.request_delete(actor, _backup_id(action))
            return Outcome(messages.delete_confirmation_message(conf))

        await press(body, work, replace=False)

    @app.action(ids.RESTORE_REQUEST)
    async def restore_requested(ack, body, action) -> None:
        await ack()
        actor = Actor(body["user"]["id"])

        async def work() -> Outcome:
            conf = await ops.request_restore(actor, _backup_id(action))
            return Outcome(messages.restore_confirmation_message(conf))

        await press(body, work, replace=False)

    @app.action(ids.CONFIRM_DELETE)
    async def delete_confirmed(ack, body, action) -> None:
        await ack()
        actor = Actor(body["user"]["id"])

        async def work() -> Outcome:
            done = await ops.confirm_delete(actor, action["value"])
            return Outcome(
                messages.deleted_message(done), [messages.announce_deleted(actor.user_id, done.confirmation)]
            )

        await press(body, work, replace=True)

    @app.action(ids.CANCEL)
    async def cancelled(ack, body, action) -> None:
        await ack()
        actor = Actor(body["user"]["id"])

        async def work() -> Outcome:
            return Outcome(messages.cancelled_message(await ops.cancel(actor, action["value"])))

        await press(body, work, replace=True)

    @app.action(re.compile(r"^list_page_"))
    async def list_page(ack, body, action) -> None:
        await ack()
        actor = Actor(body["user"]["id"])

        async def work() -> Outcome:
            try:
                state = json.loads(action["value"])
                offset = int(state["o"])
            except (ValueError, KeyError, TypeError):
                raise UsageError("this page button is damaged; run /backup list again", "list") from None
            listing = await ops.list_backups(actor, state.get("s"), state.get("t"))
            return Outcome(messages.listing_message(listing, deps.clock(), offset=offset))

        await press(body, work, replace=True)

    @app.action(ids.OPEN_RESTORE)
    async def restore_modal_opened(ack, body, action, client) -> None:
        """Open the modal at once (its trigger_id lives 3 s); only a store check comes first."""
        await ack()
        actor = Actor(body["user"]["id"])
        token = action["value"]
        try:
            conf = await ops.authorize_confirmation(actor, token, Action.RESTORE)
        except OpsError as exc:
            await deps.responses.send(body["response_url"], error_message(exc), replace_original=False)
            return
        metadata = json.dumps({"c": token, "ch": _channel(body), "ru": body.get("response_url")})
        await client.views_open(trigger_id=body["trigger_id"], view=modals.restore_modal(conf, metadata))

    @app.view(ids.RESTORE_MODAL)
    async def restore_submitted(ack, body, view, client) -> None:
        actor = Actor(body["user"]["id"])
        meta = json.loads(view.get("private_metadata") or "{}")
        token, channel_id, response_url = meta.get("c", ""), meta.get("ch"), meta.get("ru")
        typed = (
            view["state"]["values"].get(ids.RESTORE_INPUT_BLOCK, {}).get(ids.RESTORE_INPUT_ACTION, {}).get("value")
            or ""
        )
        try:
            await ops.check_restore_text(token, typed)
        except ConfirmationMismatch as exc:
            await ack(
                response_action="errors",
                errors={ids.RESTORE_INPUT_BLOCK: mismatch_text(exc.confirmation)},
            )
            return
        except OpsError:
            pass  # closed below; confirm_restore raises it again and the reply says why
        await ack()

        async def work() -> Outcome:
            done = await ops.confirm_restore(actor, token, typed)
            return Outcome(
                messages.restore_started_message(done),
                [messages.announce_restore(actor.user_id, done.confirmation)],
            )

        async def send(message: dict, *, replace: bool = True) -> None:
            if response_url:
                await deps.responses.send(response_url, message, replace_original=replace)
            elif channel_id:
                await client.chat_postEphemeral(channel=channel_id, user=actor.user_id, **message)

        async def send_error(message: dict) -> None:
            await send(message, replace=False)

        await answer(deps, work, send, send_error=send_error, channel_id=channel_id)
