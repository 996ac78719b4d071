"""Buttons and the restore modal: ack, one use case, render, reply.

Permission is checked for whoever presses, at the press (the use cases do
it). Results replace the message that carried the button; refusals come as
a new ephemeral message, so a second press never hides what the first did.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.backup_api import BACKUP_TYPES
from bot.i18n import N_, _
from bot.ops import Actor, Awaiting, ChainStarted, ConfirmationMismatch, Decision, Done, InUndoWindow, ReplyTo
from bot.parsing import UsageError, parse_id
from bot.policy import Action
from bot.slack import ids
from bot.slack.commands import created_outcome, delete_confirmation
from bot.slack.policy_form import open_form
from bot.slack.replies import EXPECTED_ERRORS, Deps, Outcome, answer
from bot.slack.requests import submitted_choice, submitted_text
from bot.slack.views import approvals, messages, modals, safety, watching
from bot.slack.views.errors import error_message, mismatch_text

log = logging.getLogger(__name__)


def _channel(body: dict) -> str | None:
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")


def _backup_id(value: str) -> int:
    return parse_id(value, "backup")


@dataclass(frozen=True)
class Press:
    """A button pressed: by whom, its value, and where the message with the button is."""

    actor: Actor
    value: str
    channel_id: str | None
    response_url: str
    trigger_id: str = ""

    @property
    def reply_to(self) -> ReplyTo:
        return ReplyTo(self.channel_id, self.response_url)


def button_registrar(app: AsyncApp, deps: Deps):
    """`@button(action_id, replace=...)` registers `work(press) -> Outcome | None` as a button's listener.

    It acks at once, runs the work for whoever pressed, and replies through the press's response_url:
    with `replace`, the result takes the place of the message that carried the button; a refusal
    always comes as a new message, so it never hides what an earlier press did.
    """

    def button(action_id, *, replace: bool):
        def register_work(work: Callable[[Press], Awaitable[Outcome | None]]):
            @app.action(action_id)
            async def pressed(ack, body, action) -> None:
                await ack()
                response_url = body.get("response_url") or ""
                it = Press(
                    Actor(body["user"]["id"], channel_id=_channel(body)),
                    str(action.get("value") or (action.get("selected_option") or {}).get("value", "")),
                    _channel(body),
                    response_url,
                    str(body.get("trigger_id", "")),
                )

                async def send(message: dict, replace_original: bool = replace) -> None:
                    if response_url:
                        await deps.responses.send(response_url, message, replace_original=replace_original)
                    else:  # pressed on the Home tab: the answer goes on top of it
                        await deps.home.publish(it.actor.user_id, note=message)

                async def send_error(message: dict) -> None:
                    await send(message, replace_original=False)

                await answer(
                    deps,
                    lambda: work(it),
                    send,
                    send_error=send_error,
                    channel_id=it.channel_id,
                    kind="action",
                    user_id=it.actor.user_id,
                    refresh_home=bool(response_url),
                )

            return work

        return register_work

    return button


def confirmed(result: Done | Awaiting | InUndoWindow | ChainStarted, done_reply, announce, deps: Deps) -> Outcome:
    """A confirmed delete or restore: done (reply and announce), waiting for approval (reply and card),
    waiting out its undo window (reply with Undo), or waiting on its safety backup (reply and announce)."""
    if isinstance(result, Awaiting):
        request = result.request
        card = (request.id, approvals.approval_card(request))
        return Outcome(approvals.awaiting_message(request), card=card, server_id=request.target_server_id)
    if isinstance(result, InUndoWindow):
        return Outcome(safety.delete_scheduled_message(result.window, deps.clock()))
    if isinstance(result, ChainStarted):
        announce_chain = safety.announce_chain_started(result)
        return Outcome(safety.chain_started_message(result), [announce_chain], server_id=result.chain.target_server_id)
    return Outcome(done_reply(result), [announce(result.confirmation)], server_id=result.confirmation.target_server_id)


def register(app: AsyncApp, deps: Deps) -> None:
    ops = deps.ops
    button = button_registrar(app, deps)

    @button(ids.DELETE_REQUEST, replace=False)
    async def delete_requested(it: Press) -> Outcome:
        conf = await ops.request_delete(it.actor, _backup_id(it.value))
        return await delete_confirmation(deps, conf)

    @button(ids.RESTORE_REQUEST, replace=False)
    async def restore_requested(it: Press) -> Outcome:
        conf = await ops.request_restore(it.actor, _backup_id(it.value))
        return Outcome(messages.restore_confirmation_message(conf, deps.clock()))

    @button(ids.CONFIRM_DELETE, replace=True)
    async def delete_confirmed(it: Press) -> Outcome:
        result = await ops.confirm_delete(it.actor, it.value, reply_to=it.reply_to)
        return confirmed(
            result, messages.deleted_message, lambda c: messages.announce_deleted(it.actor.user_id, c), deps
        )

    @button(ids.UNDO_DELETE, replace=True)
    async def delete_undone(it: Press) -> Outcome:
        return Outcome(safety.undone_message(await ops.undo_delete(it.actor, it.value)))

    @button(ids.RESTORE_WITHOUT_SAFETY, replace=False)
    async def restore_without_safety(it: Press) -> Outcome:
        backup_id, target = _numbers(it.value, "b", "t")
        conf = await ops.request_restore(it.actor, backup_id, target, safety=False)
        return Outcome(messages.restore_confirmation_message(conf, deps.clock()))

    @button(ids.MAKE_ROOM, replace=False)
    async def make_room_requested(it: Press) -> Outcome:
        server_id, backup_id = _numbers(it.value, "s", "b")
        description = _field(it.value, "d")
        conf = await ops.request_make_room(it.actor, server_id, backup_id, description)
        return Outcome(safety.make_room_confirmation_message(conf))

    @button(ids.CONFIRM_MAKE_ROOM, replace=True)
    async def make_room_confirmed(it: Press) -> Outcome:
        made = await ops.confirm_make_room(it.actor, it.value, reply_to=it.reply_to)
        deleted = messages.announce_deleted(it.actor.user_id, made.confirmation)
        if made.created is None:
            reply = safety.room_made_message(made, error_message(made.error))
            return Outcome(reply, [deleted], server_id=made.confirmation.server_id)
        created = created_outcome(deps, it.actor.user_id, made.created)
        return Outcome(
            safety.room_made_message(made, created.reply),
            [deleted, *created.announcements],
            server_id=made.confirmation.server_id,
        )

    async def decided(it: Press, decision: Decision) -> None:
        await deps.reporter.request_settled(decision)
        if not it.response_url:  # pressed on the Home tab: show it without the request
            await deps.home.publish(it.actor.user_id, opened=False)

    @button(ids.APPROVE, replace=False)
    async def approve(it: Press) -> None:
        await decided(it, await ops.approve(it.actor, it.value))

    @button(ids.DENY, replace=False)
    async def deny(it: Press) -> None:
        await decided(it, await ops.deny(it.actor, it.value))

    @button(ids.WITHDRAW, replace=False)
    async def withdraw(it: Press) -> None:
        await deps.reporter.request_settled(await ops.withdraw(it.actor, it.value))

    @button(ids.ALERT_CREATE, replace=False)
    async def take_a_backup_from_an_alert(it: Press) -> Outcome:
        """Take a backup, from an alert's card: the same create as `/backup create`, for whoever pressed."""
        server_id = parse_id(it.value, "server")
        backup = await ops.create_backup(it.actor, server_id, "", follow=it.reply_to)
        return created_outcome(deps, it.actor.user_id, backup)

    @button(ids.ALERT_STATUS, replace=False)
    async def status_from_an_alert(it: Press) -> Outcome:
        statuses = await ops.status(it.actor, parse_id(it.value, "server"))
        return Outcome(watching.status_message(statuses, deps.clock()))

    @button(ids.POLICY_EDIT, replace=False)
    async def policy_edit_pressed(it: Press) -> Outcome | None:
        return await open_form(deps, app.client, it.actor, parse_id(it.value, "server"), it.trigger_id, it.reply_to)

    @button(ids.CANCEL, replace=True)
    async def cancelled(it: Press) -> Outcome:
        return Outcome(messages.cancelled_message(await ops.cancel(it.actor, it.value)))

    @button(re.compile(r"^list_page_"), replace=True)
    async def list_page(it: Press) -> Outcome:
        server_id, backup_type, offset = _page_state(it.value)
        listing = await ops.list_backups(it.actor, server_id, backup_type)
        return Outcome(messages.listing_message(listing, deps.clock(), offset=offset))

    @button(ids.OPEN_RESTORE, replace=False)
    async def restore_modal_opened(it: Press) -> Outcome | None:
        """Open the modal at once (its trigger_id lives 3 s); only a store check comes first."""
        conf = await ops.authorize_confirmation(it.actor, it.value, Action.RESTORE)
        metadata = json.dumps({"c": it.value, "ch": it.channel_id, "ru": it.response_url})
        try:
            await app.client.views_open(trigger_id=it.trigger_id, view=modals.restore_modal(conf, metadata))
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown_error")
            log.warning("views.open refused: %s", error)
            return Outcome(messages.modal_not_opened_message(error))
        return None

    @app.view(ids.RESTORE_MODAL)
    async def restore_submitted(ack, body, view, client) -> None:
        async with deps.ops.speaking_to(body["user"]["id"]):
            await _restore_submitted(ack, body, view, client)

    async def _restore_submitted(ack, body, view, client) -> None:
        meta = _metadata(view)
        if meta is None:
            await ack(response_action="errors", errors={ids.RESTORE_INPUT_BLOCK: _(DAMAGED_FORM)})
            return
        asked_in = meta.get("ch") if isinstance(meta.get("ch"), str) else None
        actor = Actor(body["user"]["id"], channel_id=asked_in)
        token, channel_id, response_url = str(meta.get("c", "")), meta.get("ch"), meta.get("ru")
        typed = submitted_text(view, ids.RESTORE_INPUT_BLOCK, ids.RESTORE_INPUT_ACTION)
        refusal: Exception | None = None
        try:
            await ops.check_restore_text(actor, token, typed)
        except ConfirmationMismatch as exc:
            await ack(response_action="errors", errors={ids.RESTORE_INPUT_BLOCK: mismatch_text(exc.confirmation)})
            return
        except EXPECTED_ERRORS as exc:
            refusal = exc  # the form closes; the reply says why
        await ack()

        async def work() -> Outcome:
            if refusal is not None:
                raise refusal
            where = ReplyTo(
                channel_id if isinstance(channel_id, str) else None,
                response_url if isinstance(response_url, str) else None,
            )
            result = await ops.confirm_restore(
                actor,
                token,
                typed,
                reason=submitted_text(view, ids.RESTORE_REASON_BLOCK, ids.RESTORE_REASON_ACTION),
                reply_to=where,
                safety=submitted_choice(view, ids.RESTORE_SAFETY_BLOCK, ids.RESTORE_SAFETY_ACTION, ids.SAFETY_OPTION),
            )
            return confirmed(
                result,
                messages.restore_started_message,
                lambda c: messages.announce_restore(actor.user_id, c),
                deps,
            )

        async def send(message: dict, *, replace: bool = True) -> None:
            if isinstance(response_url, str) and response_url:
                await deps.responses.send(response_url, message, replace_original=replace)
            else:
                await client.chat_postEphemeral(channel=channel_id, user=actor.user_id, **message)

        async def send_error(message: dict) -> None:
            await send(message, replace=False)

        await answer(
            deps,
            work,
            send,
            send_error=send_error,
            channel_id=channel_id if isinstance(channel_id, str) else None,
            kind="view",
            user_id=actor.user_id,
        )


DAMAGED_FORM = N_("This form is damaged, so nothing was done. Close it and run /backup restore again.")


def _metadata(view: dict) -> dict | None:
    """The restore form's private_metadata, or None if it is not what the bot wrote: a JSON object
    naming where to reply (a response_url or a channel)."""
    try:
        meta = json.loads(view.get("private_metadata") or "")
    except (ValueError, TypeError):
        return None
    if not isinstance(meta, dict):
        return None
    reply_to = [meta.get("ru"), meta.get("ch")]
    return meta if any(isinstance(where, str) and where for where in reply_to) else None


def _numbers(value: str, *keys: str) -> tuple[int, ...]:
    """Positive IDs from a button's JSON value, as the bot wrote them; else the button is damaged."""
    try:
        state = json.loads(value)
        numbers = tuple(state[key] for key in keys)
    except (ValueError, KeyError, TypeError):
        raise UsageError(_("this button is damaged; run the command again"), "help") from None
    if not all(type(n) is int and n > 0 for n in numbers):
        raise UsageError(_("this button is damaged; run the command again"), "help")
    return numbers


def _field(value: str, key: str) -> str:
    text = json.loads(value).get(key)
    return text if isinstance(text, str) else ""


def _page_state(value: object) -> tuple[int | None, str | None, int]:
    """A page button's value: server, type and offset, as the bot wrote them."""
    try:
        state = json.loads(str(value))
        server_id, backup_type, offset = state.get("s"), state.get("t"), state["o"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UsageError(_("this page button is damaged; run /backup list again"), "list") from None
    valid_server = server_id is None or (type(server_id) is int and server_id > 0)
    if not valid_server or backup_type not in (None, *BACKUP_TYPES) or type(offset) is not int or offset < 0:
        raise UsageError(_("this page button is damaged; run /backup list again"), "list")
    return server_id, backup_type, offset
