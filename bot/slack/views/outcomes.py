"""The words for how a write ended, one set per outcome, used by every surface that tells of one.

A direct reply, the undo window's reply, a restore chain's steps, an approval's card and reply, making
room, and the team's announcements all say "not done" and "may have happened" with these (bot/ops/writes.py
has the outcomes). Unknown is never told as not done: it says what may have happened and how to check.
"""

from __future__ import annotations

from bot.i18n import _, for_the_team
from bot.ops.writes import Sent, WriteKind
from bot.slack.views.base import Message, escape, simple


def _server(sent: Sent, server: str | None) -> str:
    return server or _("server *{id}*").format(id=sent.write.server_id)


def unknown_text(sent: Sent, server: str | None = None) -> str:
    """A write the API did not confirm: it may have happened, and how to check (`server`: the server's words)."""
    write = sent.write
    values = {"server": _server(sent, server), "id": write.backup_id, "server_id": write.server_id, "why": why(sent)}
    if write.kind is WriteKind.CREATE:
        text = _(
            ":warning: The backup API did not confirm the new backup of {server} ({why}). It *may have been "
            "created*: check `/backup list {server_id} manual` before trying again."
        )
    elif write.kind is WriteKind.DELETE:
        text = _(
            ":warning: The backup API did not confirm the delete of backup *#{id}* of {server} ({why}). It *may "
            "have been deleted*: check `/backup list {server_id}` before trying again."
        )
    else:
        text = _(
            ":warning: The backup API did not confirm the restore of {server} from backup *#{id}* ({why}). It "
            "*may have started*: check the server before trying again."
        )
    return text.format(**values)


def not_done_text(sent: Sent, server: str | None = None) -> str:
    """A write that was not done: the API refused it, or never got it; nothing changed."""
    write = sent.write
    values = {"server": _server(sent, server), "id": write.backup_id, "why": why(sent)}
    if write.kind is WriteKind.CREATE:
        text = _(":x: No backup of {server} was created: {why}.")
    elif write.kind is WriteKind.DELETE:
        text = _(":x: Backup *#{id}* of {server} was *not* deleted: {why}.")
    else:
        text = _(":x: {server} was *not* restored from backup *#{id}*: {why}.")
    return text.format(**values)


def why(sent: Sent) -> str:
    return escape(sent.why) if sent.why is not None else escape(sent.error or "")


@for_the_team
def announce_unknown(user_id: str, sent: Sent, server: str | None = None, approved_by: str | None = None) -> Message:
    """For the team: a write someone asked for was sent, but not confirmed; it may have happened."""
    write = sent.write
    values = {
        "user": user_id,
        "server": _server(sent, server),
        "id": write.backup_id,
        "why": why(sent),
        "approver": approved_by,
    }
    if write.kind is WriteKind.CREATE:
        text = _(
            ":warning: A backup of {server} asked for by <@{user}> may have been created: the backup API did not confirm it ({why})."
        )
    elif write.kind is WriteKind.DELETE:
        text = _(
            ":warning: Backup *#{id}* of {server} may have been deleted (asked for by <@{user}>): the backup API did not confirm it ({why})."
        )
    else:
        text = _(
            ":warning: The restore of {server} from backup *#{id}* (asked for by <@{user}>) may have started: the backup API did not confirm it ({why})."
        )
    text = text.format(**values)
    if approved_by:
        text += " " + _("Approved by <@{user}>.").format(user=approved_by)
    return simple(text)
