"""The two-person rule in Slack: the requester's waiting reply, the card that asks for a decision, and both
once decided. The card is a channel message (updated in place with chat.update); the reply is ephemeral
(updated through its response_url)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.backup_api import NotFound
from bot.i18n import _, for_the_team, type_word
from bot.ops import Decision, Interrupted, SafetyBackupFailed
from bot.retention import Keep
from bot.slack.ids import APPROVE, DENY, WITHDRAW
from bot.slack.views import outcomes, policies
from bot.slack.views.base import (
    REQUEST_STATE,
    Message,
    api_said,
    button,
    escape,
    message,
    reason_block,
    section,
    server_words,
    slack_date,
    state_words,
)
from bot.store import ApprovalRequest, ApprovalState


def _expires(request: ApprovalRequest) -> str:
    return slack_date(datetime.fromtimestamp(request.expires_at, UTC))


def _policy_keeps(request: ApprovalRequest) -> tuple[str, str]:
    """A policy request's keep before and after, in the reader's words."""
    data = json.loads(request.payload or "{}")
    before, after = (Keep(*data.get(side) or (0, 0, 0, 0)) for side in ("before", "after"))
    return policies.keep_words(before), policies.keep_words(after)


def request_facts(request: ApprovalRequest) -> str:
    """What is asked, as a phrase: the action, the backup (type, date, description) and the server(s)."""
    if request.action == "policy":
        before, after = _policy_keeps(request)
        return _("lower the backup policy's keep of {server} from “{before}” to “{after}”").format(
            server=server_words(request.server_id, request.server_name), before=before, after=after
        )
    values = {
        "id": request.backup_id,
        "type": escape(type_word(request.backup_type)),
        "date": slack_date(datetime.fromisoformat(request.backup_created_at)),
        "server": server_words(request.server_id, request.server_name),
        "target": server_words(request.target_server_id, request.target_server_name),
    }
    if request.action == "delete":
        text = _("delete backup *#{id}* ({type}, taken {date}) of {server}").format(**values)
    elif request.target_server_id == request.server_id:
        text = _("restore {target} from backup *#{id}* ({type}, taken {date})").format(**values)
    else:
        text = _("restore {target} from backup *#{id}* ({type}, taken {date}) of {server}").format(**values)
    if request.backup_description:
        text += f" — “{escape(request.backup_description)}”"
    return text


def _fallback(request: ApprovalRequest) -> str:
    """The notification's text: what was asked, and the state it is in, in the reader's words."""
    state = state_words(REQUEST_STATE, request.state)
    if request.action == "policy":
        return _("Lower keep of server {id}'s policy: {state}").format(id=request.server_id, state=state)
    if request.action == "delete":
        return _("Delete of backup #{id}: {state}").format(id=request.backup_id, state=state)
    return _("Restore from backup #{id}: {state}").format(id=request.backup_id, state=state)


def awaiting_message(request: ApprovalRequest) -> Message:
    """The requester's reply: the request waits for a second person."""
    text = _(
        ":hourglass_flowing_sand: Your request to {facts} needs a second person's approval "
        "(the two-person rule is on). It waits until {expires}; I'll update this message when it is decided."
    ).format(facts=request_facts(request), expires=_expires(request))
    if request.safety:
        text += "\n" + _("Once approved, a safety backup of the server is taken first; the restore follows it.")
    buttons = [button(_("Withdraw request"), WITHDRAW, request.id)]
    return message(
        _fallback(request)
        if request.action == "policy"
        else _("Waiting for approval: backup #{id}").format(id=request.backup_id),
        [section(text), {"type": "actions", "block_id": "approval", "elements": buttons}],
    )


@for_the_team
def approval_card(request: ApprovalRequest) -> Message:
    """The card in the channel: who asks, what, why, until when; Approve and Deny."""
    lines = [
        _(":raised_hand: *Approval needed* — <@{user}> asks to {facts}.").format(
            user=request.requested_by, facts=request_facts(request)
        )
    ]
    if request.safety:
        lines.append(_("A safety backup of the server is taken first; the restore follows it."))
    lines.append(
        _("Expires {expires}. An owner of the server or an admin may decide; not the requester.").format(
            expires=_expires(request)
        )
    )
    buttons = [
        button(_("Approve"), APPROVE, request.id, style="primary"),
        button(_("Deny"), DENY, request.id, style="danger"),
    ]
    blocks = [section("\n".join(lines))]
    if request.reason:
        blocks.append(reason_block(request.reason))
    blocks.append({"type": "actions", "block_id": "decide", "elements": buttons})
    title = _("Approval needed: backup #{id}").format(id=request.backup_id)
    return message(_fallback(request) if request.action == "policy" else title, blocks)


def _failure(decision: Decision) -> str:
    if decision.sent is not None:
        return outcomes.why(decision.sent)
    if isinstance(decision.error, SafetyBackupFailed | Interrupted):
        return escape(decision.error.why)
    if isinstance(decision.error, NotFound):
        return _("the backup no longer exists")
    return escape(decision.request.detail or _("the backup API failed"))


def outcome_words(decision: Decision) -> str:
    """How the request ended, in a line: the same words on the card and in the requester's reply."""
    request = decision.request
    by = request.decided_by or "?"
    if request.state is ApprovalState.DONE:
        if decision.chain is not None:
            text = _(
                ":white_check_mark: *Approved* by <@{user}> — safety backup #{safety} started; the restore follows."
            )
        elif decision.handed_on:
            text = _(
                ":white_check_mark: *Approved* by <@{user}> — the restore goes on after its safety backup; "
                "the requester's reply follows it."
            )
        elif request.action == "policy":
            text = _(":white_check_mark: *Approved* by <@{user}> — the new keep is in force.")
        elif request.action == "delete":
            text = _(":white_check_mark: *Approved* by <@{user}> — deleted.")
        else:
            text = _(":white_check_mark: *Approved* by <@{user}> — restore started.")
        extra = "\n" + api_said(decision.provider_message) if decision.provider_message else ""
        safety = decision.chain.safety.id if decision.chain else None
        return text.format(user=by, safety=safety) + extra
    if request.state is ApprovalState.UNKNOWN:
        server = server_words(request.target_server_id, request.target_server_name)
        return (
            _(":white_check_mark: *Approved* by <@{user}>.").format(user=by)
            + " "
            + outcomes.unknown_text(decision.sent, server)
        )
    if request.state is ApprovalState.FAILED:
        return _(
            ":x: *Approved* by <@{user}>, but it was *not* done: {why}. Nothing was changed; it can be asked for again."
        ).format(user=by, why=_failure(decision))
    if request.state is ApprovalState.DENIED:
        return _(":no_entry: *Denied* by <@{user}>. Nothing was changed.").format(user=by)
    if request.state is ApprovalState.WITHDRAWN:
        return _(":leftwards_arrow_with_hook: *Withdrawn* by <@{user}>. Nothing was changed.").format(
            user=request.requested_by
        )
    if request.state is ApprovalState.EXPIRED:
        return _(":alarm_clock: *Expired*: nobody decided in time. Nothing was changed.")
    return _(":grey_question: This request is {state}.").format(state=state_words(REQUEST_STATE, request.state))


@for_the_team
def decided_card(decision: Decision) -> Message:
    """The card once decided: what was asked, and how it ended; no buttons."""
    request = decision.request
    head = _("<@{user}> asked to {facts}.").format(user=request.requested_by, facts=request_facts(request))
    blocks = [section(head), section(outcome_words(decision))]
    if request.reason:
        blocks.insert(1, reason_block(request.reason))
    return message(_fallback(request), blocks)


def decided_reply(decision: Decision) -> Message:
    """The requester's reply, updated once the request is decided."""
    request = decision.request
    text = _("Your request to {facts}:").format(facts=request_facts(request)) + "\n" + outcome_words(decision)
    return message(_fallback(request), [section(text)])
