"""The policy form: opened from `/backup policy SERVER edit`, the Edit button on a policy or on `status`, and
the Home tab's server menu. Two pages: the schedule and keep as they are typed, then a preview of the next
runs and of what retention would keep and delete; only Save on the preview changes anything, through the
same use case as the command.

Bad input is shown on its field (`response_action: errors`); the preview reads the API, so the first page
is answered at once with a working notice and the preview replaces it (views.update) when it is ready.
"""

from __future__ import annotations

import json
import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.i18n import N_, _
from bot.ops import Actor, Awaiting, PolicyChange, ReplyTo
from bot.parsing import UsageError, parse_policy_form
from bot.slack import ids
from bot.slack.replies import EXPECTED_ERRORS, Deps, Outcome, answer
from bot.slack.requests import submitted_text
from bot.slack.views import approvals, messages, policies
from bot.slack.views.base import flatten_text
from bot.slack.views.errors import error_message

log = logging.getLogger(__name__)


async def open_form(
    deps: Deps,
    client: AsyncWebClient,
    actor: Actor,
    server_id: int,
    trigger_id: str,
    reply_to: ReplyTo,
) -> Outcome | None:
    """Open the form for whoever may set the server's policy (refused otherwise, as the command would be)."""
    name, policy = await deps.ops.policy_to_edit(actor, server_id)
    metadata = policies.form_metadata(server_id, reply_to.channel_id, reply_to.response_url)
    form = policies.policy_form(server_id, name, policy, deps.ops.timezone, metadata)
    try:
        await client.views_open(trigger_id=trigger_id, view=form)
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown_error")
        log.warning("views.open refused: %s", error)
        return Outcome(messages.modal_not_opened_message(error))
    return None


def policy_outcome(deps: Deps, user_id: str, result) -> Outcome:
    """A policy set (from the command or the form): the policy in full and its announcement, or the request a
    second person approves (a lower keep under the two-person rule)."""
    if isinstance(result, Awaiting):
        request = result.request
        card = (request.id, approvals.approval_card(request))
        return Outcome(approvals.awaiting_message(request), card=card, server_id=request.server_id)
    return Outcome(
        policies.policy_saved_message(result), [policies.announce_policy(user_id, result)], server_id=result.server_id
    )


def _meta(view: dict) -> dict | None:
    try:
        meta = json.loads(view.get("private_metadata") or "")
    except (ValueError, TypeError):
        return None
    if not isinstance(meta, dict) or type(meta.get("s")) is not int or meta["s"] <= 0:
        return None
    return meta


def register(app: AsyncApp, deps: Deps) -> None:
    """The form's two pages (the buttons that open it are registered with the other buttons)."""

    @app.view(ids.POLICY_MODAL)
    async def form_submitted(ack, body, view, client) -> None:
        async with deps.ops.speaking_to(body["user"]["id"]):
            await _form_submitted(ack, body, view, client)

    async def _form_submitted(ack, body, view, client) -> None:
        meta = _meta(view)
        if meta is None:
            await ack(response_action="errors", errors={ids.POLICY_SCHEDULE_BLOCK: _(DAMAGED)})
            return
        schedule = submitted_text(view, ids.POLICY_SCHEDULE_BLOCK, ids.POLICY_SCHEDULE_ACTION)
        keep = submitted_text(view, ids.POLICY_KEEP_BLOCK, ids.POLICY_KEEP_ACTION)
        try:
            fields = parse_policy_form(schedule, keep)
        except UsageError as exc:
            block = ids.POLICY_KEEP_BLOCK if exc.subcommand == "keep" else ids.POLICY_SCHEDULE_BLOCK
            await ack(response_action="errors", errors={block: exc.problem})
            return
        if fields.get("zone") is None:
            fields["zone"] = deps.ops.timezone
        change = PolicyChange(**fields)
        await ack(
            response_action="update",
            view=policies.form_notice(_(":hourglass_flowing_sand: Working out what it would do…")),
        )
        actor = Actor(body["user"]["id"], channel_id=meta.get("ch") if isinstance(meta.get("ch"), str) else None)
        stored = {**meta, "typed": [schedule, keep]}  # the words, parsed again at Save: never trusted as parsed
        try:
            preview = await deps.ops.preview_policy(actor, meta["s"], change)
            page = policies.policy_preview(preview, json.dumps(stored))
        except EXPECTED_ERRORS as exc:
            page = policies.form_notice(flatten_text(error_message(exc).get("blocks", [])) or _(DAMAGED))
        try:
            await client.views_update(view_id=body["view"]["id"], view=page)
        except SlackApiError as exc:
            log.warning("views.update refused: %s", exc.response.get("error", "unknown_error"))

    @app.view(ids.POLICY_PREVIEW)
    async def preview_saved(ack, body, view, client) -> None:
        async with deps.ops.speaking_to(body["user"]["id"]):
            await _preview_saved(ack, body, view, client)

    async def _preview_saved(ack, body, view, client) -> None:
        await ack()
        meta = _meta(view)
        channel_id = meta.get("ch") if meta and isinstance(meta.get("ch"), str) else None
        response_url = meta.get("ru") if meta and isinstance(meta.get("ru"), str) else None
        actor = Actor(body["user"]["id"], channel_id=channel_id)

        async def work() -> Outcome:
            typed = meta.get("typed") if meta else None
            if not (isinstance(typed, list) and len(typed) == 2 and all(isinstance(t, str) for t in typed)):
                raise UsageError(_(DAMAGED), "policy")
            fields = parse_policy_form(*typed)
            fields["zone"] = fields.get("zone") or deps.ops.timezone
            result = await deps.ops.set_policy(
                actor, meta["s"], PolicyChange(**fields), reply_to=ReplyTo(channel_id, response_url)
            )
            return policy_outcome(deps, actor.user_id, result)

        async def send(message: dict, *, replace: bool = False) -> None:
            if response_url:
                await deps.responses.send(response_url, message, replace_original=replace)
            elif channel_id:
                await client.chat_postEphemeral(channel=channel_id, user=actor.user_id, **message)
            else:
                await deps.home.publish(actor.user_id, note=message)

        await answer(deps, work, send, channel_id=channel_id, kind="view", user_id=actor.user_id)


DAMAGED = N_("This form is damaged, so nothing was saved. Close it and run /backup policy SERVER edit again.")
