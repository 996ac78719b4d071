"""Messages: replies to the person and announcements to the team.

Every message is a dict with a plain `text` fallback and `blocks`, and never
exceeds Slack's 50 blocks: long lists are paged.
"""

from __future__ import annotations

import json
from datetime import datetime

from bot.backup_api import MANUAL_LIMIT, Backup
from bot.clock import utc_now
from bot.ops import Accepted, Done, Listing, ServerAccess
from bot.parsing import SUBCOMMANDS
from bot.policy import ADMIN_ONLY, FOR_ANYONE, REQUIRED_ROLE, Action, Role, backup_actions, is_allowed
from bot.slack.ids import CANCEL, CONFIRM_DELETE, DELETE_REQUEST, LIST_NEXT, LIST_PREV, OPEN_RESTORE, RESTORE_REQUEST
from bot.slack.views.base import (
    MAX_BLOCKS,
    MAX_SECTION,
    PAGE_SIZE,
    Message,
    ago,
    backup_text,
    button,
    confirmation_facts,
    context,
    escape,
    message,
    plain_server,
    section,
    server_words,
    simple,
    size_words,
    truncate,
)
from bot.slack.views.safety import what_restore_undoes
from bot.store import ApprovalRequest, AuditEntry, Confirmation, Followed


def help_message(is_admin: bool = True, role: Role | None = None) -> Message:
    """Usage of the subcommands this person may use (on at least one server), from the table in
    bot/parsing.py; then one line on the rest and who can give them. Admins see everything."""
    rows, others = [], []
    for word, syntax in SUBCOMMANDS.items():
        if word == "help":
            continue
        if is_allowed(syntax.action, is_admin=is_admin, role=role):
            rows.append((syntax, _who_may(syntax.action)))
        else:
            others.append(f"`{word}`{_who_may(syntax.action)}")
    lines = [f"`{syntax.usage}`\n      {syntax.summary}{who}" for syntax, who in rows]
    examples = "\n".join(f"`{syntax.example}`" for syntax, _ in rows if syntax.example)
    blocks = [section("*Manage VPS.org backups from Slack*\n" + "\n".join(lines))]
    if examples:
        blocks.append(section("*Examples*\n" + examples))
    footer = "Roles per server: viewer < operator < owner. Admins may do everything."
    if others:
        footer = f"Also there, with more rights: {', '.join(others)}. An admin can give a role with `/backup grant`."
    blocks.append(context(footer))
    return message("How to use /backup", blocks)


def _who_may(action: Action) -> str:
    if action in FOR_ANYONE:
        return ""
    if action in ADMIN_ONLY:
        return " (admin)"
    return f" ({REQUIRED_ROLE[action].label})"


def listing_message(listing: Listing, now: datetime, offset: int = 0, page_size: int = PAGE_SIZE) -> Message:
    total = len(listing.backups)
    offset = max(0, min(offset, max(total - 1, 0)))
    page = listing.backups[offset : offset + page_size]
    scope = "any server you may see" if listing.server_id is None else _scope_name(listing)
    kind = f"{listing.backup_type} " if listing.backup_type else ""
    if not total:
        hint = ""
        if listing.server_id is None and not listing.is_admin and not listing.roles:
            hint = " You have no role on any server yet: ask an admin for one (`/backup grant`)."
        return simple(f"No {kind}backups on {scope}.{hint}")
    scope = "every server you may see" if listing.server_id is None else scope
    blocks = [section(f"*{total} {kind}backup{'s' if total != 1 else ''}* on {scope}, newest first.")]
    for backup in page:
        blocks.append(section(backup_text(backup, now)))
        actions = backup_actions(is_admin=listing.is_admin, role=listing.role_on(backup.server.id))
        buttons = []
        if Action.RESTORE in actions and backup.is_restorable:
            buttons.append(button("Restore…", RESTORE_REQUEST, str(backup.id)))
        if Action.DELETE in actions:
            buttons.append(button("Delete…", DELETE_REQUEST, str(backup.id), style="danger"))
        if buttons:
            blocks.append({"type": "actions", "block_id": f"backup-{backup.id}", "elements": buttons})
    shown = f"Showing {offset + 1}–{offset + len(page)} of {total}."
    blocks.append(context(shown + " Times in your time zone; sizes in GB of 1024 MB."))
    paging = []
    state = {"s": listing.server_id, "t": listing.backup_type}
    if offset > 0:
        paging.append(button("‹ Newer", LIST_PREV, json.dumps({**state, "o": max(0, offset - page_size)})))
    if offset + page_size < total:
        paging.append(
            button(
                f"Older ({total - offset - page_size} more) ›",
                LIST_NEXT,
                json.dumps({**state, "o": offset + page_size}),
            )
        )
    if paging:
        blocks.append({"type": "actions", "block_id": "paging", "elements": paging})
    return message(f"{total} backups on {scope}", blocks)


def _scope_name(listing: Listing) -> str:
    names = {b.server.id: b.server.name for b in listing.backups}
    return server_words(listing.server_id, names.get(listing.server_id))


def servers_message(access: list[ServerAccess]) -> Message:
    if not access:
        return simple("You have no role on any server yet. An admin can give you one with `/backup grant`.")
    lines = [
        f"• {server_words(a.server_id, a.name)} — {a.role}" + (" · two-person rule" if a.approvals else "")
        for a in access
    ]
    return _chunked(f"*Servers you may touch ({len(access)})*", lines, f"{len(access)} servers")


def _chunked(title: str, lines: list[str], fallback: str) -> Message:
    """Lines packed into sections of at most 3000 characters, within the block limit."""
    blocks, current = [], title
    for line in lines:
        if len(current) + len(line) + 1 > MAX_SECTION - 100:
            blocks.append(section(current))
            current = ""
        current = f"{current}\n{line}" if current else line
        if len(blocks) >= MAX_BLOCKS - 2:
            break
    blocks.append(section(current))
    return message(fallback, blocks)


def audit_message(entries: list[AuditEntry]) -> Message:
    if not entries:
        return simple("The audit log is empty.")
    lines = [audit_line(e) for e in entries]
    return _chunked(f"*Last {len(entries)} audit entries, newest first*", lines, f"{len(entries)} audit entries")


OUTCOME_ICON = {
    "done": ":white_check_mark:",
    "denied": ":no_entry:",
    "failed": ":x:",
    "cancelled": ":leftwards_arrow_with_hook:",
}


def audit_line(e: AuditEntry) -> str:
    who = f"<@{e.user_id}>" if not e.user_id.startswith("cli:") else f"`{escape(e.user_id)}`"
    target = ""
    if e.backup_id:
        target += f" #{e.backup_id}"
    if e.server_id:
        target += f" on {e.server_id}"
    detail = f" — {escape(truncate(e.detail_line, 120))}" if e.detail else ""
    return f"{OUTCOME_ICON.get(e.outcome, '')} `{e.at[:16].replace('T', ' ')}` {who} *{e.action}*{target} → {e.outcome} ({e.source}){detail}"


# --- create and follow --------------------------------------------------------------


def created_message(backup: Backup, now: datetime) -> Message:
    text = (
        f":hourglass_flowing_sand: Backup *#{backup.id}* of {server_words(backup.server.id, backup.server.name)} "
        f"has started. I'll update this message when it is done."
    )
    blocks = [section(text), section(backup_text(backup, now))]
    if backup.message:
        blocks.append(context(escape(backup.message)))
    return message(f"Backup #{backup.id} started", blocks)


def modal_not_opened_message(error: str) -> Message:
    if error in ("expired_trigger_id", "invalid_trigger_id", "exchanged_trigger_id"):
        return simple(":hourglass: Slack took too long to open the form, so nothing was done. Press the button again.")
    return simple(
        f":warning: Slack would not open the form ({escape(error)}), so nothing was done. Press the button again."
    )


def accepted_message(accepted: Accepted) -> Message:
    """A create the API accepted but whose answer could not be read: it happened; don't invite a duplicate."""
    return simple(
        f":floppy_disk: The backup API *accepted* the backup of server *{accepted.server_id}*, but its answer "
        "could not be read, so I can't show or follow it. Check "
        f"`/backup list {accepted.server_id} manual` before trying again: it is probably there."
    )


def announce_accepted(user_id: str, accepted: Accepted) -> Message:
    desc = f": “{escape(accepted.description)}”" if accepted.description else ""
    return simple(
        f":floppy_disk: <@{user_id}> started a manual backup of server *{accepted.server_id}*{desc} "
        "(the backup API's answer could not be read, so it is not followed)."
    )


def finished_message(backup: Backup, now: datetime) -> Message:
    """The reply to `create`, updated in place when the backup ends."""
    if backup.status == "completed":
        head = f":white_check_mark: Backup *#{backup.id}* is complete ({size_words(backup.size_mb)})."
    else:
        head = f":rotating_light: Backup *#{backup.id}* ended *{escape(backup.status)}*: it is *not* usable."
    return message(head, [section(head), section(backup_text(backup, now))])


def ended_message(backup_id: int, why: str) -> Message:
    return simple(f":warning: I stopped following backup *#{backup_id}*: {why}")


# --- confirmations ---------------------------------------------------------------------


def delete_confirmation_message(conf: Confirmation, grace_seconds: float = 0) -> Message:
    """The delete to confirm; with an undo window, it says how long Undo will be offered."""
    then = (
        f"After you confirm, you can still undo it for {grace_seconds:g} seconds; then it is gone for good."
        if grace_seconds
        else "This cannot be undone."
    )
    text = f":warning: *Delete this backup?*\n{confirmation_facts(conf)} will be deleted *permanently*. {then}"
    dialog = {
        "title": {"type": "plain_text", "text": f"Delete backup #{conf.backup_id}?"},
        "text": {
            "type": "plain_text",
            "text": truncate(
                f"Backup #{conf.backup_id} of {conf.server_name} will be gone for good"
                + (
                    f" once its {grace_seconds:g}-second undo window ends."
                    if grace_seconds
                    else ". This cannot be undone."
                ),
                300,
            ),
        },
        "confirm": {"type": "plain_text", "text": "Delete it"},
        "deny": {"type": "plain_text", "text": "Keep it"},
        "style": "danger",
    }
    buttons = [
        button(f"Delete backup #{conf.backup_id}", CONFIRM_DELETE, conf.id, style="danger", confirm=dialog),
        button("Cancel", CANCEL, conf.id),
    ]
    return message(
        f"Confirm: delete backup #{conf.backup_id}?",
        [section(text), {"type": "actions", "block_id": "confirm", "elements": buttons}],
    )


def restore_confirmation_message(conf: Confirmation, now: datetime | None = None) -> Message:
    """The restore to confirm, with what it undoes: when the backup was taken and the newer ones there are."""
    target = server_words(conf.target_server_id, conf.target_server_name)
    safety = (
        "you can first take a safety backup of its current state (ticked by default)"
        if conf.safety
        else "*without* a safety backup (you asked for that; you can still tick it)"
    )
    text = (
        f":warning: *Restore {plain_server(conf.target_server_id, conf.target_server_name)} from a backup?*\n"
        f"{confirmation_facts(conf)} will replace everything on "
        f"{target}. Whatever was written there since is *lost*; this cannot be undone.\n"
        f"{what_restore_undoes(conf, now or utc_now())}\n"
        f"Next, you will be asked to type the server's name; {safety}."
    )
    buttons = [
        button(f"Restore {conf.target_server_name}…", OPEN_RESTORE, conf.id, style="danger"),
        button("Cancel", CANCEL, conf.id),
    ]
    return message(
        f"Confirm: restore {conf.target_server_name} from backup #{conf.backup_id}?",
        [section(text), {"type": "actions", "block_id": "confirm", "elements": buttons}],
    )


def deleted_message(done: Done) -> Message:
    conf = done.confirmation
    return simple(
        f":wastebasket: Deleted backup *#{conf.backup_id}* of {server_words(conf.server_id, conf.server_name)}."
    )


def restore_started_message(done: Done) -> Message:
    conf = done.confirmation
    text = (
        f":recycle: Restore of {server_words(conf.target_server_id, conf.target_server_name)} from backup "
        f"*#{conf.backup_id}* has started."
    )
    if done.provider_message:
        text += f"\n> {escape(done.provider_message)}"
    return simple(text)


def cancelled_message(conf: Confirmation) -> Message:
    return simple(
        f":leftwards_arrow_with_hook: Cancelled: {conf.action} of backup *#{conf.backup_id}*. Nothing was changed."
    )


def channels_message(server_id: int, channels: list[str], changed: tuple[str, bool, bool] | None = None) -> Message:
    lines = []
    if changed is not None:
        channel, added, did = changed
        verb = (
            ("now bound to" if added else "no longer bound to")
            if did
            else ("already bound to" if added else "was not bound to")
        )
        lines.append(f":round_pushpin: Server *{server_id}* is {verb} <#{channel}>.")
    if channels:
        where = ", ".join(f"<#{c}>" for c in channels)
        lines.append(
            f"Server *{server_id}* is run from and announced in {where}: its backups are created, deleted and "
            "restored only there. Listing works anywhere."
        )
    else:
        lines.append(f"Server *{server_id}* has no channels of its own: it may be run from anywhere.")
    return simple("\n".join(lines))


def approvals_set_message(server_id: int, on: bool, changed: bool) -> Message:
    if on:
        text = (
            f":raised_hand: The two-person rule is {'now' if changed else 'already'} *on* for server *{server_id}*: "
            "each delete and restore waits for a second owner or an admin to approve it."
        )
    else:
        text = f":unlock: The two-person rule is {'now' if changed else 'already'} *off* for server *{server_id}*."
    return simple(text)


def granted_message(user_id: str, server_id: int, role_label: str) -> Message:
    return simple(f":key: <@{user_id}> is now *{role_label}* on server *{server_id}*.")


def revoked_message(user_id: str, server_id: int, removed: bool) -> Message:
    if removed:
        return simple(f":lock: <@{user_id}> no longer has a role on server *{server_id}*.")
    return simple(f"<@{user_id}> had no role on server *{server_id}*; nothing changed.")


# --- announcements (to the team) ---------------------------------------------------------


def announce_created(user_id: str, backup: Backup) -> Message:
    desc = f": “{escape(backup.description)}”" if backup.description else ""
    return simple(
        f":floppy_disk: <@{user_id}> started a manual backup *#{backup.id}* of "
        f"{server_words(backup.server.id, backup.server.name)}{desc}"
    )


def _approved(approved_by: str | None) -> str:
    return f", approved by <@{approved_by}>" if approved_by else ""


def announce_deleted(user_id: str, conf: Confirmation | ApprovalRequest, approved_by: str | None = None) -> Message:
    return simple(
        f":wastebasket: <@{user_id}> deleted backup *#{conf.backup_id}* ({escape(conf.backup_type)}) of "
        f"{server_words(conf.server_id, conf.server_name)}{_approved(approved_by)}."
    )


def announce_restore(user_id: str, conf: Confirmation | ApprovalRequest, approved_by: str | None = None) -> Message:
    source = (
        ""
        if conf.server_id == conf.target_server_id
        else f" (a backup of {server_words(conf.server_id, conf.server_name)})"
    )
    return simple(
        f":recycle: <@{user_id}> started restoring {server_words(conf.target_server_id, conf.target_server_name)} "
        f"from backup *#{conf.backup_id}*{source}{_approved(approved_by)}."
    )


def announce_finished(followed: Followed, backup: Backup, manual_count: int | None) -> Message:
    who = f"<@{followed.requested_by}>"
    where = server_words(backup.server.id, backup.server.name)
    if backup.status == "completed":
        text = f":white_check_mark: Backup *#{backup.id}* of {where} is complete ({size_words(backup.size_mb)}) — asked for by {who}."
    else:
        text = (
            f":rotating_light: *Backup #{backup.id} of {plain_server(backup.server.id, backup.server.name)} FAILED* "
            f"— it ended *{escape(backup.status)}* "
            f"and cannot be restored. Asked for by {who}; take another before any risky change."
        )
    if manual_count is not None and manual_count >= MANUAL_LIMIT - 1:
        text += "\n" + quota_warning(where, manual_count)
    return simple(text)


def quota_warning(where: str, manual_count: int) -> str:
    if manual_count >= MANUAL_LIMIT:
        return (
            f":warning: {where} now has *{manual_count} of {MANUAL_LIMIT}* manual backups: the next `create` will "
            "be refused until one is deleted."
        )
    return f":warning: {where} now has *{manual_count} of {MANUAL_LIMIT}* manual backups: one more fits."


def announce_automatic_failed(backup: Backup, now: datetime) -> Message:
    return simple(
        f":rotating_light: *Automatic backup #{backup.id} of {plain_server(backup.server.id, backup.server.name)} "
        f"ended {escape(backup.status)}* ({ago(backup.created_at, now)}): it cannot be restored. "
        f"The last good one is in `/backup list {backup.server.id}`; consider `/backup create {backup.server.id}`."
    )


def announce_ended(followed: Followed, why: str) -> Message:
    return simple(
        f":warning: I stopped following backup *#{followed.backup_id}* of server *{followed.server_id}* "
        f"(asked for by <@{followed.requested_by}>): {why}"
    )
