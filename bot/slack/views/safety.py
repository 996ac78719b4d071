"""The safety nets' messages: the undo window, the restore that waits on its safety backup, making room.

A chain's reply is one message updated in place, step by step (safety
backup started → completed → restore started), so the requester always
sees where it stands.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.backup_api import MANUAL_LIMIT, Backup
from bot.ops import ChainStarted, ChainStep, DeleteSent, NoRoom, RoomMade, SafetyBackupFailed
from bot.slack.ids import CANCEL, CONFIRM_MAKE_ROOM, MAKE_ROOM, RESTORE_WITHOUT_SAFETY, UNDO_DELETE
from bot.slack.views.base import (
    Message,
    ago,
    button,
    confirmation_facts,
    context,
    escape,
    message,
    plain_server,
    section,
    server_words,
    simple,
    slack_date,
    truncate,
)
from bot.store import Confirmation, DeleteWindow, RestoreChain

# --- the undo window ----------------------------------------------------------------


def _until(due: datetime, now: datetime) -> str:
    """How long until `due`, to the second under a minute (an undo window is often that short)."""
    seconds = round((due - now).total_seconds())
    if 0 < seconds < 60:
        return f"in {seconds} second{'s' if seconds != 1 else ''}"
    return ago(due, now)


def delete_scheduled_message(window: DeleteWindow, now: datetime) -> Message:
    due = datetime.fromtimestamp(window.due_at, UTC)
    where = server_words(window.server_id, window.server_name)
    text = (
        f":hourglass_flowing_sand: Backup *#{window.backup_id}* of {where} will be deleted at {slack_date(due)} "
        f"({_until(due, now)}). Until then it can be undone."
    )
    blocks = [
        section(text),
        {"type": "actions", "block_id": "undo", "elements": [button("Undo", UNDO_DELETE, window.id, "primary")]},
        context(f"Undo: <@{window.requested_by}>, an owner of the server or an admin."),
    ]
    return message(f"Backup #{window.backup_id} will be deleted {_until(due, now)}", blocks)


def undone_message(window: DeleteWindow) -> Message:
    return simple(
        f":leftwards_arrow_with_hook: Undone by <@{window.decided_by}>: backup *#{window.backup_id}* of "
        f"{server_words(window.server_id, window.server_name)} is kept. Nothing was deleted."
    )


def delete_sent_message(sent: DeleteSent) -> Message:
    window = sent.window
    where = server_words(window.server_id, window.server_name)
    if sent.why is None:
        return simple(f":wastebasket: Deleted backup *#{window.backup_id}* of {where}: its undo window ended.")
    return simple(
        f":x: Backup *#{window.backup_id}* of {where} was to be deleted when its undo window ended, but "
        f"{escape(sent.why)}. Check `/backup list {window.server_id}`: it may or may not be there."
    )


def undo_unavailable_text(window: DeleteWindow | None) -> str:
    if window is None:
        return ":grey_question: I don't know this delete. Nothing was changed."
    what = f"backup *#{window.backup_id}*"
    if window.state.value == "undone":
        return f":leftwards_arrow_with_hook: The delete of {what} was already undone by <@{window.decided_by}>."
    if window.state.value in ("sending", "done"):
        return f":wastebasket: Too late to undo: {what} was deleted when its window ended."
    return f":grey_question: The delete of {what} is {escape(window.state.value)}; it can no longer be undone."


# --- a restore after a safety backup -------------------------------------------------


def _steps(chain: RestoreChain, first: str, second: str) -> str:
    target = plain_server(chain.target_server_id, chain.target_server_name)
    head = f"*Restore of {target} from backup #{chain.backup_id}*"
    if chain.approved_by:
        head += f" (approved by <@{chain.approved_by}>)"
    return f"{head}\n1. {first}\n2. {second}"


def chain_started_message(started: ChainStarted) -> Message:
    chain, safety = started.chain, started.safety
    text = _steps(
        chain,
        f":hourglass_flowing_sand: Safety backup *#{safety.id}* of the current state has started.",
        f":double_vertical_bar: The restore is sent once *#{safety.id}* is complete.",
    )
    return message(
        f"Safety backup #{safety.id} started; the restore follows",
        [section(text), context("I'll update this message at each step.")],
    )


def chain_step_message(step: ChainStep) -> Message:
    """The requester's reply once the chain moved on: restored, or stopped with nothing restored."""
    chain = step.chain
    if step.why is None:
        text = _steps(
            chain,
            f":white_check_mark: Safety backup *#{chain.safety_backup_id}* is complete.",
            ":recycle: The restore has started.",
        )
        if step.provider_message:
            text += f"\n> {escape(step.provider_message)}"
        return simple(text)
    return chain_stopped_message(chain, step.why, offer_without=step.offer_without)


def chain_stopped_message(chain: RestoreChain, why: str, *, offer_without: bool) -> Message:
    target = server_words(chain.target_server_id, chain.target_server_name)
    text = f":x: *Nothing was restored* on {target} from backup *#{chain.backup_id}*: {escape(why)}."
    blocks = [section(text)]
    if offer_without:
        value = json.dumps({"b": chain.backup_id, "t": chain.target_server_id})
        blocks.append(
            {
                "type": "actions",
                "block_id": "without",
                "elements": [button("Restore without a safety backup…", RESTORE_WITHOUT_SAFETY, value, "danger")],
            }
        )
        blocks.append(context("That asks you to confirm again, with the server's name."))
    return message(f"Nothing was restored from backup #{chain.backup_id}", blocks)


def safety_failed_message(error: SafetyBackupFailed) -> Message:
    return chain_stopped_message(error.chain, error.why, offer_without=True)


def announce_chain_started(started: ChainStarted) -> Message:
    chain, safety = started.chain, started.safety
    approved = f", approved by <@{chain.approved_by}>" if chain.approved_by else ""
    return simple(
        f":floppy_disk: <@{chain.requested_by}> is restoring "
        f"{server_words(chain.target_server_id, chain.target_server_name)} from backup *#{chain.backup_id}*"
        f"{approved}: first a safety backup *#{safety.id}* of its current state; the restore follows when it "
        "is complete."
    )


def announce_chain_step(step: ChainStep) -> Message:
    chain = step.chain
    target = server_words(chain.target_server_id, chain.target_server_name)
    if step.why is None:
        return simple(
            f":recycle: <@{chain.requested_by}> started restoring {target} from backup *#{chain.backup_id}*, "
            f"after safety backup *#{chain.safety_backup_id}* completed."
        )
    return simple(
        f":warning: The restore of {target} from backup *#{chain.backup_id}* (asked by <@{chain.requested_by}>) "
        f"was *not* sent: {escape(step.why)}."
    )


# --- room at the limit -----------------------------------------------------------------


def _oldest_words(backup: Backup) -> str:
    desc = f" — “{escape(truncate(backup.description, 200))}”" if backup.description else ""
    return f"*#{backup.id}*, taken {slack_date(backup.created_at)}{desc}"


def no_room_message(error: NoRoom) -> Message:
    text = (
        f":warning: Server *{error.server_id}* already has *{error.count} of {MANUAL_LIMIT}* manual backups, "
        "the most VPS.org keeps, so no backup was created."
    )
    said = context(f"The backup API said: “{escape(error.provider_message)}”")
    if error.oldest is None:
        return message(f"No room on server {error.server_id}: no backup was created", [section(text), said])
    text += f"\nThe oldest manual one is {_oldest_words(error.oldest)}."
    blocks = [section(text), said]
    if error.ruled:
        blocks.append(
            context(
                f"This server is under the two-person rule: delete it with `/backup delete {error.oldest.id}` "
                "(a second person approves), then create again."
            )
        )
    elif error.may_make_room:
        value = json.dumps({"s": error.server_id, "b": error.oldest.id, "d": error.description[:255]})
        blocks.append(
            {
                "type": "actions",
                "block_id": "room",
                "elements": [button(f"Delete #{error.oldest.id} and create", MAKE_ROOM, value, "danger")],
            }
        )
    else:
        blocks.append(context("An owner of the server or an admin can make room by deleting one."))
    return message(f"No room on server {error.server_id}: no backup was created", blocks)


def make_room_confirmation_message(conf: Confirmation) -> Message:
    desc = f" “{escape(conf.description)}”" if conf.description else ""
    text = (
        f":warning: *Make room?*\n{confirmation_facts(conf)}"
        + (f" — “{escape(truncate(conf.backup_description, 200))}”" if conf.backup_description else "")
        + " will be deleted *permanently* (this cannot be undone), then a new backup"
        + f"{desc} of {server_words(conf.server_id, conf.server_name)} is created."
    )
    dialog = {
        "title": {"type": "plain_text", "text": f"Delete backup #{conf.backup_id}?"},
        "text": {
            "type": "plain_text",
            "text": truncate(
                f"Backup #{conf.backup_id} of {conf.server_name} will be gone for good, to make room. "
                "This cannot be undone.",
                300,
            ),
        },
        "confirm": {"type": "plain_text", "text": "Delete and create"},
        "deny": {"type": "plain_text", "text": "Keep it"},
        "style": "danger",
    }
    buttons = [
        button(f"Delete #{conf.backup_id} and create", CONFIRM_MAKE_ROOM, conf.id, style="danger", confirm=dialog),
        button("Cancel", CANCEL, conf.id),
    ]
    return message(
        f"Confirm: delete backup #{conf.backup_id} to make room?",
        [section(text), {"type": "actions", "block_id": "confirm", "elements": buttons}],
    )


def room_made_message(made: RoomMade, created: Message | None) -> Message:
    conf = made.confirmation
    head = f":wastebasket: Deleted backup *#{conf.backup_id}* of {server_words(conf.server_id, conf.server_name)} to make room."
    if created is not None:
        return {**created, "blocks": [section(head), *created["blocks"]][:50]}
    return simple(f"{head}\n:x: But the new backup was not created: {escape(made.error)}")


# --- what a restore undoes ----------------------------------------------------------------


def what_restore_undoes(conf: Confirmation, now: datetime) -> str:
    taken = datetime.fromisoformat(conf.backup_created_at)
    target = server_words(conf.target_server_id, conf.target_server_name)
    text = f"Backup *#{conf.backup_id}* was taken {slack_date(taken)} ({ago(taken, now)})."
    if conf.newer_count and conf.newest_id is not None and conf.newest_at:
        newest = datetime.fromisoformat(conf.newest_at)
        count = f"{conf.newer_count} newer backup{'s' if conf.newer_count != 1 else ''} of {target}"
        verb = "exist" if conf.newer_count != 1 else "exists"
        text += f" {count} {verb}; the newest is *#{conf.newest_id}*, {ago(newest, now)}."
    else:
        text += f" No newer backup of {target} exists."
    return text


def no_room_for_safety_words(conf: Confirmation) -> str | None:
    """The form's warning when the target server has no room for a safety backup, from the count known."""
    if conf.target_manual_count is None or conf.target_manual_count < MANUAL_LIMIT:
        return None
    return (
        f":warning: Server *{conf.target_server_id}* already has {conf.target_manual_count} of {MANUAL_LIMIT} "
        "manual backups: there is no room for a safety backup, so with the box ticked nothing will be restored. "
        "Delete one first, or untick the box."
    )
