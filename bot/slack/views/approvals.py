"""The two-person rule in Slack: the requester's waiting reply, the card that asks for a decision, and both
once decided. The card is a channel message (updated in place with chat.update); the reply is ephemeral
(updated through its response_url)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.ops import Decision
from bot.slack.ids import APPROVE, DENY, WITHDRAW
from bot.slack.views.base import Message, button, context, escape, message, section, server_words, slack_date
from bot.store import ApprovalRequest, ApprovalState

VERB = {"delete": "delete", "restore": "restore"}


def _expires(request: ApprovalRequest) -> str:
    return slack_date(datetime.fromtimestamp(request.expires_at, UTC))


def request_facts(request: ApprovalRequest) -> str:
    """What is asked, in one sentence: the action, the backup (type, date, description) and the server(s)."""
    taken = slack_date(datetime.fromisoformat(request.backup_created_at))
    backup = f"backup *#{request.backup_id}* ({escape(request.backup_type)}, taken {taken})"
    source = server_words(request.server_id, request.server_name)
    if request.action == "delete":
        text = f"delete {backup} of {source}"
    else:
        target = server_words(request.target_server_id, request.target_server_name)
        text = f"restore {target} from {backup}" + (
            "" if request.target_server_id == request.server_id else f" of {source}"
        )
    if request.backup_description:
        text += f" — “{escape(request.backup_description)}”"
    return text


def awaiting_message(request: ApprovalRequest) -> Message:
    """The requester's reply: the request waits for a second person."""
    text = (
        f":hourglass_flowing_sand: Your request to {request_facts(request)} needs a second person's approval "
        f"(the two-person rule is on). It waits until {_expires(request)}; I'll update this message when it is decided."
    )
    buttons = [button("Withdraw request", WITHDRAW, request.id)]
    return message(
        f"Waiting for approval: {request.action} of backup #{request.backup_id}",
        [section(text), {"type": "actions", "block_id": "approval", "elements": buttons}],
    )


def approval_card(request: ApprovalRequest) -> Message:
    """The card in the channel: who asks, what, why, until when; Approve and Deny."""
    lines = [f":raised_hand: *Approval needed* — <@{request.requested_by}> asks to {request_facts(request)}."]
    if request.reason:
        lines.append(f"*Why:* {escape(request.reason)}")
    lines.append(f"Expires {_expires(request)}. An owner of the server or an admin may decide; not the requester.")
    buttons = [
        button("Approve", APPROVE, request.id, style="primary"),
        button("Deny", DENY, request.id, style="danger"),
    ]
    return message(
        f"Approval needed: {request.action} of backup #{request.backup_id}",
        [section("\n".join(lines)), {"type": "actions", "block_id": "decide", "elements": buttons}],
    )


def outcome_words(decision: Decision) -> str:
    request = decision.request
    by = f"<@{request.decided_by}>" if request.decided_by else "someone"
    done = "deleted" if request.action == "delete" else "restore started"
    if request.state is ApprovalState.DONE:
        extra = f" ({escape(decision.provider_message)})" if decision.provider_message else ""
        return f":white_check_mark: *Approved* by {by} — {done}{extra}."
    if request.state is ApprovalState.FAILED:
        return (
            f":x: *Approved* by {by}, but nothing could be done: {escape(request.detail or 'the backup API failed')}. "
            "Check `/backup list` before asking again."
        )
    if request.state is ApprovalState.DENIED:
        return f":no_entry: *Denied* by {by}. Nothing was changed."
    if request.state is ApprovalState.WITHDRAWN:
        return f":leftwards_arrow_with_hook: *Withdrawn* by <@{request.requested_by}>. Nothing was changed."
    if request.state is ApprovalState.EXPIRED:
        return ":alarm_clock: *Expired*: nobody decided in time. Nothing was changed."
    return f":grey_question: This request is {escape(request.state.value)}."


def decided_card(decision: Decision) -> Message:
    """The card once decided: what was asked, and how it ended; no buttons."""
    request = decision.request
    head = f"<@{request.requested_by}> asked to {request_facts(request)}."
    blocks = [section(head), section(outcome_words(decision))]
    if request.reason:
        blocks.insert(1, context(f"Why: {escape(request.reason)}"))
    return message(f"{request.action} of backup #{request.backup_id}: {request.state.value}", blocks)


def decided_reply(decision: Decision) -> Message:
    """The requester's reply, updated once the request is decided."""
    request = decision.request
    text = f"Your request to {request_facts(request)}:\n{outcome_words(decision)}"
    return message(f"{request.action} of backup #{request.backup_id}: {request.state.value}", [section(text)])
