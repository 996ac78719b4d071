"""The safety nets' messages: the undo window, the restore that waits on its safety backup, making room.

A chain's reply is one message updated in place, step by step (safety
backup started → completed → restore started), so the requester always
sees where it stands.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.backup_api import MANUAL_LIMIT, Backup
from bot.i18n import Words, _, for_the_team, ngettext
from bot.ops import ChainStarted, ChainStep, DeleteSent, NoRoom, RoomMade, SafetyBackupFailed
from bot.slack.ids import CANCEL, CONFIRM_MAKE_ROOM, MAKE_ROOM, RESTORE_WITHOUT_SAFETY, UNDO_DELETE
from bot.slack.views import outcomes
from bot.slack.views.base import (
    WINDOW_STATE,
    Message,
    ago,
    api_said,
    button,
    confirmation_facts,
    context,
    escape,
    message,
    plain,
    plain_server,
    section,
    server_words,
    simple,
    slack_date,
    state_words,
    truncate,
    with_note,
)
from bot.store import Confirmation, DeleteWindow, RestoreChain

# --- the undo window ----------------------------------------------------------------


def _until(due: datetime, now: datetime) -> str:
    """How long until `due`, to the second under a minute (an undo window is often that short)."""
    seconds = round((due - now).total_seconds())
    if 0 < seconds < 60:
        return ngettext("in {n} second", "in {n} seconds", seconds).format(n=seconds)
    return ago(due, now)


def delete_scheduled_message(window: DeleteWindow, now: datetime) -> Message:
    due = datetime.fromtimestamp(window.due_at, UTC)
    text = _(
        ":hourglass_flowing_sand: Backup *#{id}* of {server} will be deleted at {date} ({when}). "
        "Until then it can be undone."
    ).format(
        id=window.backup_id,
        server=server_words(window.server_id, window.server_name),
        date=slack_date(due),
        when=_until(due, now),
    )
    undo = button(_("Undo"), UNDO_DELETE, window.id, "primary")
    blocks = [
        section(text),
        {"type": "actions", "block_id": "undo", "elements": [undo]},
        context(_("Undo: <@{user}>, an owner of the server or an admin.").format(user=window.requested_by)),
    ]
    return message(_("Backup #{id} will be deleted {when}").format(id=window.backup_id, when=_until(due, now)), blocks)


def undone_message(window: DeleteWindow) -> Message:
    return simple(
        _(
            ":leftwards_arrow_with_hook: Undone by <@{user}>: backup *#{id}* of {server} is kept. Nothing was deleted."
        ).format(user=window.decided_by, id=window.backup_id, server=server_words(window.server_id, window.server_name))
    )


def delete_sent_message(ended: DeleteSent) -> Message:
    """The requester's reply once the window ended: deleted, already gone, not deleted, or may have been."""
    window, sent = ended.window, ended.sent
    where = server_words(window.server_id, window.server_name)
    if sent.done:
        text = _(":wastebasket: Deleted backup *#{id}* of {server}: its undo window ended.")
    elif sent.gone:
        text = _(":mag: Backup *#{id}* of {server} was already gone when its undo window ended: nothing to delete.")
    elif sent.unknown:
        return simple(outcomes.unknown_text(sent, where))
    else:
        return simple(
            outcomes.not_done_text(sent, where)
            + " "
            + _("It is still there: run `/backup delete {id}` again if it should go.").format(id=window.backup_id)
        )
    return simple(text.format(id=window.backup_id, server=where))


def undo_unavailable_text(window: DeleteWindow | None) -> str:
    if window is None:
        return _(":grey_question: I don't know this delete. Nothing was changed.")
    if window.state.value == "undone":
        text = _(":leftwards_arrow_with_hook: The delete of backup *#{id}* was already undone by <@{user}>.")
    elif window.state.value in ("waiting", "sending"):
        text = _(":wastebasket: Too late to undo: the undo window of backup *#{id}* has ended and it is being deleted.")
    elif window.state.value == "done":
        text = _(":wastebasket: Too late to undo: backup *#{id}* was deleted when its window ended.")
    else:
        text = _(":grey_question: The delete of backup *#{id}* can no longer be undone ({state}).")
    return text.format(id=window.backup_id, user=window.decided_by, state=state_words(WINDOW_STATE, window.state))


# --- a restore after a safety backup -------------------------------------------------


def _steps(chain: RestoreChain, first: str, second: str) -> str:
    target = plain_server(chain.target_server_id, chain.target_server_name)
    head = _("*Restore of {server} from backup #{id}*").format(server=target, id=chain.backup_id)
    if chain.approved_by:
        head += " " + _("(approved by <@{user}>)").format(user=chain.approved_by)
    return f"{head}\n1. {first}\n2. {second}"


def chain_started_message(started: ChainStarted) -> Message:
    chain, safety = started.chain, started.safety
    text = _steps(
        chain,
        _(":hourglass_flowing_sand: Safety backup *#{id}* of the current state has started.").format(id=safety.id),
        _(":double_vertical_bar: The restore is sent once *#{id}* is complete.").format(id=safety.id),
    )
    return message(
        _("Safety backup #{id} started; the restore follows").format(id=safety.id),
        [section(text), context(_("I'll update this message at each step."))],
    )


def chain_step_message(step: ChainStep) -> Message:
    """The requester's reply once the chain moved on: restored, may have started, stopped with nothing
    restored, or (its bot having died while asking) its safety backup found after all."""
    chain = step.chain
    if step.found is not None:
        return chain_started_message(ChainStarted(chain, step.found))
    complete = _(":white_check_mark: Safety backup *#{id}* is complete.").format(id=chain.safety_backup_id)
    if step.restored:
        text = _steps(chain, complete, _(":recycle: The restore has started."))
        if step.sent.message:
            return with_note(simple(text), api_said(step.sent.message))
        return simple(text)
    if step.maybe:
        target = server_words(chain.target_server_id, chain.target_server_name)
        return simple(_steps(chain, complete, outcomes.unknown_text(step.sent, target)))
    return chain_stopped_message(chain, step.why, offer_without=step.offer_without)


def chain_stopped_message(chain: RestoreChain, why: Words | str, *, offer_without: bool) -> Message:
    text = _(":x: *Nothing was restored* on {server} from backup *#{id}*: {why}.").format(
        server=server_words(chain.target_server_id, chain.target_server_name), id=chain.backup_id, why=escape(why)
    )
    blocks = [section(text)]
    if offer_without:
        value = json.dumps({"b": chain.backup_id, "t": chain.target_server_id})
        without = button(_("Restore without a safety backup…"), RESTORE_WITHOUT_SAFETY, value, "danger")
        blocks.append({"type": "actions", "block_id": "without", "elements": [without]})
        blocks.append(context(_("That asks you to confirm again, with the server's name.")))
    return message(_("Nothing was restored from backup #{id}").format(id=chain.backup_id), blocks)


def safety_failed_message(error: SafetyBackupFailed) -> Message:
    return chain_stopped_message(error.chain, error.why, offer_without=True)


@for_the_team
def announce_chain_started(started: ChainStarted) -> Message:
    chain, safety = started.chain, started.safety
    approved = _(", approved by <@{user}>").format(user=chain.approved_by) if chain.approved_by else ""
    return simple(
        _(
            ":floppy_disk: <@{user}> is restoring {server} from backup *#{id}*{approved}: first a safety backup "
            "*#{safety}* of its current state; the restore follows when it is complete."
        ).format(
            user=chain.requested_by,
            server=server_words(chain.target_server_id, chain.target_server_name),
            id=chain.backup_id,
            approved=approved,
            safety=safety.id,
        )
    )


@for_the_team
def announce_chain_step(step: ChainStep) -> Message:
    chain = step.chain
    target = server_words(chain.target_server_id, chain.target_server_name)
    if step.found is not None:
        return announce_chain_started(ChainStarted(chain, step.found))
    if step.maybe:
        return outcomes.announce_unknown(chain.requested_by, step.sent, target, chain.approved_by)
    if step.restored:
        text = _(
            ":recycle: <@{user}> started restoring {server} from backup *#{id}*, after safety backup *#{safety}* "
            "completed."
        )
    else:
        text = _(":warning: The restore of {server} from backup *#{id}* (asked by <@{user}>) was *not* sent: {why}.")
    return simple(
        text.format(
            user=chain.requested_by,
            server=target,
            id=chain.backup_id,
            safety=chain.safety_backup_id,
            why=escape(step.why or ""),
        )
    )


# --- room at the limit -----------------------------------------------------------------


def _oldest_words(backup: Backup) -> str:
    desc = f" — “{escape(truncate(backup.description, 200))}”" if backup.description else ""
    return _("*#{id}*, taken {date}").format(id=backup.id, date=slack_date(backup.created_at)) + desc


def no_room_message(error: NoRoom) -> Message:
    text = _(
        ":warning: Server *{id}* already has *{n} of {limit}* manual backups, the most VPS.org keeps, "
        "so no backup was created."
    ).format(id=error.server_id, n=error.count, limit=MANUAL_LIMIT)
    said = context(api_said(error.provider_message))
    fallback = _("No room on server {id}: no backup was created").format(id=error.server_id)
    if error.oldest is None:
        return message(fallback, [section(text), said])
    text += "\n" + _("The oldest manual one is {backup}.").format(backup=_oldest_words(error.oldest))
    blocks = [section(text), said]
    if error.ruled:
        blocks.append(
            context(
                _(
                    "This server is under the two-person rule: delete it with `/backup delete {id}` "
                    "(a second person approves), then create again."
                ).format(id=error.oldest.id)
            )
        )
    elif error.may_make_room:
        value = json.dumps({"s": error.server_id, "b": error.oldest.id, "d": error.description[:255]})
        make_room = button(_("Delete #{id} and create").format(id=error.oldest.id), MAKE_ROOM, value, "danger")
        blocks.append({"type": "actions", "block_id": "room", "elements": [make_room]})
    else:
        blocks.append(context(_("An owner of the server or an admin can make room by deleting one.")))
    return message(fallback, blocks)


def make_room_confirmation_message(conf: Confirmation) -> Message:
    old = f" — “{escape(truncate(conf.backup_description, 200))}”" if conf.backup_description else ""
    new = f" “{escape(conf.description)}”" if conf.description else ""
    text = _(
        ":warning: *Make room?*\n{facts}{old} will be deleted *permanently* (this cannot be undone), "
        "then a new backup{new} of {server} is created."
    ).format(facts=confirmation_facts(conf), old=old, new=new, server=server_words(conf.server_id, conf.server_name))
    dialog = {
        "title": plain(_("Delete backup #{id}?").format(id=conf.backup_id)),
        "text": plain(
            truncate(
                _("Backup #{id} of {server} will be gone for good, to make room. This cannot be undone.").format(
                    id=conf.backup_id, server=conf.server_name
                ),
                300,
            )
        ),
        "confirm": plain(_("Delete and create")),
        "deny": plain(_("Keep it")),
        "style": "danger",
    }
    label = _("Delete #{id} and create").format(id=conf.backup_id)
    buttons = [
        button(label, CONFIRM_MAKE_ROOM, conf.id, style="danger", confirm=dialog),
        button(_("Cancel"), CANCEL, conf.id),
    ]
    return message(
        _("Confirm: delete backup #{id} to make room?").format(id=conf.backup_id),
        [section(text), {"type": "actions", "block_id": "confirm", "elements": buttons}],
    )


def room_made_message(made: RoomMade, then: Message) -> Message:
    """The oldest backup deleted to make room, then `then`: the created backup's reply, or why it was not."""
    conf = made.confirmation
    head = _(":wastebasket: Deleted backup *#{id}* of {server} to make room.").format(
        id=conf.backup_id, server=server_words(conf.server_id, conf.server_name)
    )
    return {**then, "blocks": [section(head), *then["blocks"]][:50]}


# --- what a restore undoes ----------------------------------------------------------------


def what_restore_undoes(conf: Confirmation, now: datetime) -> str:
    taken = datetime.fromisoformat(conf.backup_created_at)
    target = server_words(conf.target_server_id, conf.target_server_name)
    text = _("Backup *#{id}* was taken {date} ({ago}).").format(
        id=conf.backup_id, date=slack_date(taken), ago=ago(taken, now)
    )
    if conf.newer_count and conf.newest_id is not None and conf.newest_at:
        newest = datetime.fromisoformat(conf.newest_at)
        text += " " + ngettext(
            "{n} newer backup of {server} exists: *#{newest}*, {ago}.",
            "{n} newer backups of {server} exist; the newest is *#{newest}*, {ago}.",
            conf.newer_count,
        ).format(n=conf.newer_count, server=target, newest=conf.newest_id, ago=ago(newest, now))
    else:
        text += " " + _("No newer backup of {server} exists.").format(server=target)
    return text


def no_room_for_safety_words(conf: Confirmation) -> str | None:
    """The form's warning when the target server has no room for a safety backup, from the count known."""
    if conf.target_manual_count is None or conf.target_manual_count < MANUAL_LIMIT:
        return None
    return _(
        ":warning: Server *{id}* already has {n} of {limit} manual backups: there is no room for a safety backup, "
        "so with the box ticked nothing will be restored. Delete one first, or untick the box."
    ).format(id=conf.target_server_id, n=conf.target_manual_count, limit=MANUAL_LIMIT)
