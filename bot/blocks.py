"""Block Kit rendering, and the action ids the listeners match. Pure: no I/O, no Bolt.

Every message is a dict with a plain `text` fallback and `blocks`. Text that
comes from people or from the API (descriptions, server names) is escaped for
mrkdwn, so `<!channel>` in a description is shown, never sent as a ping.
A message never exceeds Slack's 50 blocks: long lists are paged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

from bot.backup_api import (
    ApiTimeout,
    Backup,
    BackupApiError,
    BadRequest,
    NotFound,
    Unauthorized,
    Unavailable,
)
from bot.ops import (
    BackupNotFound,
    ConfirmationMismatch,
    ConfirmationUnavailable,
    Done,
    Listing,
    NotRestorable,
    OpsError,
    PermissionDenied,
    ServerAccess,
)
from bot.parsing import EXAMPLES, USAGE, UsageError
from bot.policy import Action, backup_actions
from bot.store import AuditEntry, Confirmation, Followed

MAX_BLOCKS = 50
MAX_SECTION = 3000
PAGE_SIZE = 20
MANUAL_LIMIT = 10

DELETE_REQUEST = "backup_delete"
RESTORE_REQUEST = "backup_restore"
CONFIRM_DELETE = "confirm_delete"
OPEN_RESTORE = "confirm_restore"
CANCEL = "cancel_confirmation"
LIST_PREV = "list_page_prev"
LIST_NEXT = "list_page_next"
RESTORE_MODAL = "restore_modal"
RESTORE_INPUT_BLOCK = "typed_server"
RESTORE_INPUT_ACTION = "typed"

Message = dict


def escape(text: object) -> str:
    """Escape text for mrkdwn: Slack's three control characters, nothing else."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str, **extra) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _truncate(text, MAX_SECTION)}, **extra}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _truncate(text, MAX_SECTION)}]}


def _button(text: str, action_id: str, value: str, style: str | None = None, confirm: dict | None = None) -> dict:
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": _truncate(text, 75), "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = confirm
    return button


def _message(text: str, blocks: list[dict]) -> Message:
    assert len(blocks) <= MAX_BLOCKS, f"{len(blocks)} blocks: Slack refuses more than {MAX_BLOCKS}"
    return {"text": _truncate(text, 3000), "blocks": blocks}


def simple(text: str) -> Message:
    return _message(text, [_section(text)])


def with_note(message: Message, note: str) -> Message:
    """The message with a small note under it (a reference, a problem with the announcement)."""
    return {**message, "blocks": [*message["blocks"], _context(note)][:MAX_BLOCKS]}


# --- words for things ---------------------------------------------------------


def size_words(size_mb: int | None) -> str:
    if size_mb is None:
        return "size not known yet"
    if size_mb < 1024:
        return f"{size_mb} MB"
    return f"{size_mb / 1024:.1f} GB"


def ago(moment: datetime, now: datetime) -> str:
    seconds = (now - moment).total_seconds()
    future = seconds < 0
    words = _span(abs(seconds))
    if words == "just now":
        return words
    return f"in {words}" if future else f"{words} ago"


def _span(seconds: float) -> str:
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "just now"


def slack_date(moment: datetime) -> str:
    """A date Slack shows in the reader's own time zone, with a UTC fallback."""
    fallback = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def server_words(server_id: int, name: str | None) -> str:
    return f"*{escape(name)}* ({server_id})" if name and name != str(server_id) else f"server *{server_id}*"


def plain_server(server_id: int, name: str | None) -> str:
    """A server's name and ID for inside a bold span, where mrkdwn cannot nest another."""
    return f"{escape(name)} ({server_id})" if name and name != str(server_id) else f"server {server_id}"


STATUS_ICON = {"completed": ":white_check_mark:", "in_progress": ":hourglass_flowing_sand:"}


def status_words(status: str) -> str:
    icon = STATUS_ICON.get(status, ":warning:")
    return f"{icon} {escape(status.replace('_', ' '))}"


def expiry_words(backup: Backup, now: datetime) -> str:
    if backup.expires_at is None:
        return "never expires" if backup.backup_type == "manual" else "no expiry given"
    return f"expires {ago(backup.expires_at, now)}"


def backup_text(backup: Backup, now: datetime) -> str:
    lines = [
        f"*#{backup.id}* · {server_words(backup.server.id, backup.server.name)} · {escape(backup.backup_type)}"
        f" · {status_words(backup.status)} · {size_words(backup.size_mb)}",
        f"Created {ago(backup.created_at, now)} ({slack_date(backup.created_at)}) · {expiry_words(backup, now)}",
    ]
    if backup.description:
        lines.append(f"> {escape(_truncate(backup.description, 500))}")
    return "\n".join(lines)


# --- help and errors ------------------------------------------------------------


def help_message() -> Message:
    rows = [
        ("list", "backups, newest first (viewer)"),
        ("create", "take a manual backup; I follow it to completion (operator)"),
        ("delete", "delete one, after you confirm (owner)"),
        ("restore", "restore a server from a backup, after you confirm and type its name (owner)"),
        ("servers", "the servers you may touch, and your role"),
        ("grant", "give someone a role on a server (admin)"),
        ("revoke", "take it away (admin)"),
        ("audit", "the latest audit entries (admin)"),
    ]
    lines = [f"`{USAGE[name]}`\n      {words}" for name, words in rows]
    examples = "\n".join(f"`{EXAMPLES[name]}`" for name in ("list", "create", "delete", "restore", "grant"))
    blocks = [
        _section("*Manage VPS.org backups from Slack*\n" + "\n".join(lines)),
        _section("*Examples*\n" + examples),
        _context("Roles per server: viewer < operator < owner. Admins may do everything."),
    ]
    return _message("How to use /backup", blocks)


def usage_error_message(error: UsageError) -> Message:
    text = f":warning: {escape(error.problem)}."
    if error.subcommand == "help":
        text += " Try `/backup help` for the list of commands."
    if error.usage:
        text += f"\nUsage: `{error.usage}`"
    if error.example:
        text += f"\nExample: `{error.example}`"
    return simple(text)


ACTION_VERBS = {
    Action.LIST: "list backups",
    Action.CREATE: "create a backup",
    Action.DELETE: "delete a backup",
    Action.RESTORE: "restore",
    Action.GRANT: "grant roles",
    Action.REVOKE: "revoke roles",
    Action.AUDIT: "read the audit log",
    Action.SERVERS: "list servers",
    Action.ADMIN: "change who is an admin",
}


def error_text(error: Exception) -> str:
    """Words for a refusal or failure: the one place errors become Slack text."""
    if isinstance(error, UsageError):
        return usage_error_message(error)["text"]
    if isinstance(error, PermissionDenied):
        where = f" on server *{error.server_id}*" if error.server_id is not None else ""
        if error.needed == "admin":
            return f":no_entry: Only an admin may {ACTION_VERBS[error.action]}."
        return (
            f":no_entry: You can't {ACTION_VERBS[error.action]}{where}: that needs the *{error.needed}* role. "
            "An admin can give it with `/backup grant`."
        )
    if isinstance(error, BackupNotFound):
        if error.gone:
            return f":mag: Backup *#{error.backup_id}* no longer exists, so nothing was done."
        return f":mag: There is no backup *#{error.backup_id}*. `/backup list` shows the ones there are."
    if isinstance(error, NotRestorable):
        return f":warning: Backup *#{error.backup.id}* is {status_words(error.backup.status)}: only a completed backup can be restored."
    if isinstance(error, ConfirmationUnavailable):
        return confirmation_unavailable_text(error.confirmation)
    if isinstance(error, ConfirmationMismatch):
        return mismatch_text(error.confirmation)
    if isinstance(error, Unauthorized):
        return (
            ":lock: The backup API refused the bot's credentials (401), so nothing was done. "
            "An admin needs to check the bot's VPS_API_TOKEN."
        )
    if isinstance(error, BadRequest):
        return f":x: The backup API refused this: “{escape(error.provider_message)}”. Nothing was changed."
    if isinstance(error, NotFound):
        return f":mag: The backup API says it can't find that: “{escape(error)}” (404)."
    if isinstance(error, ApiTimeout):
        return (
            ":hourglass: The backup API didn't answer in time. If you were changing something, it may still "
            "have happened: check `/backup list` before trying again."
        )
    if isinstance(error, Unavailable):
        return (
            f":construction: The backup API is unavailable right now ({escape(error)}). If you were changing "
            "something, check `/backup list` before trying again; otherwise try again in a few minutes."
        )
    if isinstance(error, BackupApiError | OpsError):
        return f":warning: {escape(error)}"
    return ":boom: Something went wrong inside the bot and it was logged. Nothing more was done; please try again."


def error_message(error: Exception) -> Message:
    return simple(error_text(error))


def confirmation_unavailable_text(conf: Confirmation | None) -> str:
    if conf is None:
        return ":grey_question: I don't know this confirmation any more. Nothing was done; run the command again."
    what = f"the {conf.action} of backup *#{conf.backup_id}*"
    if conf.state == "used":
        return f":ballot_box_with_check: {what.capitalize()} was already confirmed by <@{conf.used_by}>. Nothing more was done."
    if conf.state == "cancelled":
        return f":leftwards_arrow_with_hook: {what.capitalize()} was cancelled by <@{conf.used_by}>. Nothing was done."
    if conf.state == "expired":
        return (
            f":alarm_clock: This confirmation for {what} has expired, so nothing was done. "
            f"Run `/backup {conf.action} {conf.backup_id}` again if you still want it."
        )
    if conf.state == "gone":
        return f":mag: Backup *#{conf.backup_id}* no longer exists, so nothing was done."
    if conf.state == "failed":
        return (
            f":x: <@{conf.used_by}> confirmed {what}, but the backup API failed, so this confirmation is spent. "
            f"Check `/backup list` — it may have happened — then run `/backup {conf.action} {conf.backup_id}` "
            "again if it is still needed."
        )
    return f":grey_question: This confirmation is {escape(conf.state)}. Nothing was done."


def mismatch_text(conf: Confirmation) -> str:
    return f"That is not this server. Type {conf.target_server_name} or {conf.target_server_id} exactly."


# --- lists ------------------------------------------------------------------------


def listing_message(listing: Listing, now: datetime, offset: int = 0, page_size: int = PAGE_SIZE) -> Message:
    total = len(listing.backups)
    offset = max(0, min(offset, max(total - 1, 0)))
    page = listing.backups[offset : offset + page_size]
    scope = "every server you may see" if listing.server_id is None else _scope_name(listing)
    kind = f"{listing.backup_type} " if listing.backup_type else ""
    if not total:
        hint = ""
        if listing.server_id is None and not listing.is_admin and not listing.roles:
            hint = " You have no role on any server yet: ask an admin for one (`/backup grant`)."
        return simple(f"No {kind}backups on {scope}.{hint}")
    blocks = [_section(f"*{total} {kind}backup{'s' if total != 1 else ''}* on {scope}, newest first.")]
    for backup in page:
        blocks.append(_section(backup_text(backup, now)))
        actions = backup_actions(is_admin=listing.is_admin, role=listing.role_on(backup.server.id))
        buttons = []
        if Action.RESTORE in actions and backup.is_restorable:
            buttons.append(_button("Restore…", RESTORE_REQUEST, str(backup.id)))
        if Action.DELETE in actions:
            buttons.append(_button("Delete…", DELETE_REQUEST, str(backup.id), style="danger"))
        if buttons:
            blocks.append({"type": "actions", "block_id": f"backup-{backup.id}", "elements": buttons})
    shown = f"Showing {offset + 1}–{offset + len(page)} of {total}."
    blocks.append(_context(shown + " Times in your time zone; sizes in GB of 1024 MB."))
    paging = []
    state = {"s": listing.server_id, "t": listing.backup_type}
    if offset > 0:
        paging.append(_button("‹ Newer", LIST_PREV, json.dumps({**state, "o": max(0, offset - page_size)})))
    if offset + page_size < total:
        paging.append(
            _button(
                f"Older ({total - offset - page_size} more) ›",
                LIST_NEXT,
                json.dumps({**state, "o": offset + page_size}),
            )
        )
    if paging:
        blocks.append({"type": "actions", "block_id": "paging", "elements": paging})
    return _message(f"{total} backups on {scope}", blocks)


def _scope_name(listing: Listing) -> str:
    names = {b.server.id: b.server.name for b in listing.backups}
    return server_words(listing.server_id, names.get(listing.server_id))


def servers_message(access: list[ServerAccess]) -> Message:
    if not access:
        return simple("You have no role on any server yet. An admin can give you one with `/backup grant`.")
    lines = [f"• {server_words(a.server_id, a.name)} — {a.role}" for a in access]
    return _chunked(f"*Servers you may touch ({len(access)})*", lines, f"{len(access)} servers")


def _chunked(title: str, lines: list[str], fallback: str) -> Message:
    """Lines packed into sections of at most 3000 characters, within the block limit."""
    blocks, current = [], title
    for line in lines:
        if len(current) + len(line) + 1 > MAX_SECTION - 100:
            blocks.append(_section(current))
            current = ""
        current = f"{current}\n{line}" if current else line
        if len(blocks) >= MAX_BLOCKS - 2:
            break
    blocks.append(_section(current))
    return _message(fallback, blocks)


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
    detail = f" — {escape(_truncate(e.detail, 120))}" if e.detail else ""
    return f"{OUTCOME_ICON.get(e.outcome, '')} `{e.at[:16].replace('T', ' ')}` {who} *{e.action}*{target} → {e.outcome} ({e.source}){detail}"


# --- create and follow --------------------------------------------------------------


def created_message(backup: Backup, now: datetime) -> Message:
    text = (
        f":hourglass_flowing_sand: Backup *#{backup.id}* of {server_words(backup.server.id, backup.server.name)} "
        f"has started. I'll update this message when it is done."
    )
    blocks = [_section(text), _section(backup_text(backup, now))]
    if backup.message:
        blocks.append(_context(escape(backup.message)))
    return _message(f"Backup #{backup.id} started", blocks)


def finished_message(backup: Backup, now: datetime) -> Message:
    """The reply to `create`, updated in place when the backup ends."""
    if backup.status == "completed":
        head = f":white_check_mark: Backup *#{backup.id}* is complete ({size_words(backup.size_mb)})."
    else:
        head = f":rotating_light: Backup *#{backup.id}* ended *{escape(backup.status)}*: it is *not* usable."
    return _message(head, [_section(head), _section(backup_text(backup, now))])


def ended_message(backup_id: int, why: str) -> Message:
    return simple(f":warning: I stopped following backup *#{backup_id}*: {why}")


# --- confirmations ---------------------------------------------------------------------


def _confirmation_facts(conf: Confirmation) -> str:
    created = datetime.fromisoformat(conf.backup_created_at)
    return (
        f"Backup *#{conf.backup_id}* ({escape(conf.backup_type)}, taken {slack_date(created)}) "
        f"of {server_words(conf.server_id, conf.server_name)}"
    )


def delete_confirmation_message(conf: Confirmation) -> Message:
    text = (
        f":warning: *Delete this backup?*\n{_confirmation_facts(conf)} will be deleted *permanently*. "
        "This cannot be undone."
    )
    dialog = {
        "title": {"type": "plain_text", "text": f"Delete backup #{conf.backup_id}?"},
        "text": {
            "type": "plain_text",
            "text": _truncate(
                f"Backup #{conf.backup_id} of {conf.server_name} will be gone for good. This cannot be undone.",
                300,
            ),
        },
        "confirm": {"type": "plain_text", "text": "Delete it"},
        "deny": {"type": "plain_text", "text": "Keep it"},
        "style": "danger",
    }
    buttons = [
        _button(f"Delete backup #{conf.backup_id}", CONFIRM_DELETE, conf.id, style="danger", confirm=dialog),
        _button("Cancel", CANCEL, conf.id),
    ]
    return _message(
        f"Confirm: delete backup #{conf.backup_id}?",
        [_section(text), {"type": "actions", "block_id": "confirm", "elements": buttons}],
    )


def restore_confirmation_message(conf: Confirmation) -> Message:
    target = server_words(conf.target_server_id, conf.target_server_name)
    text = (
        f":warning: *Restore {plain_server(conf.target_server_id, conf.target_server_name)} from a backup?*\n"
        f"{_confirmation_facts(conf)} will replace everything on "
        f"{target}. Whatever was written there since is *lost*. This cannot be undone.\n"
        "Next, you will be asked to type the server's name."
    )
    buttons = [
        _button(f"Restore {conf.target_server_name}…", OPEN_RESTORE, conf.id, style="danger"),
        _button("Cancel", CANCEL, conf.id),
    ]
    return _message(
        f"Confirm: restore {conf.target_server_name} from backup #{conf.backup_id}?",
        [_section(text), {"type": "actions", "block_id": "confirm", "elements": buttons}],
    )


def restore_modal(conf: Confirmation, private_metadata: str) -> dict:
    target = server_words(conf.target_server_id, conf.target_server_name)
    return {
        "type": "modal",
        "callback_id": RESTORE_MODAL,
        "private_metadata": private_metadata,
        "title": {"type": "plain_text", "text": "Restore server"},
        "submit": {"type": "plain_text", "text": "Restore"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(f"{_confirmation_facts(conf)} will *replace everything* on {target}. This cannot be undone."),
            {
                "type": "input",
                "block_id": RESTORE_INPUT_BLOCK,
                "label": {
                    "type": "plain_text",
                    "text": f"Type {_truncate(conf.target_server_name, 1900)} to confirm",
                },
                "hint": {
                    "type": "plain_text",
                    "text": f"The server's name, or its ID {conf.target_server_id}.",
                },
                "element": {"type": "plain_text_input", "action_id": RESTORE_INPUT_ACTION},
            },
        ],
    }


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


def announce_deleted(user_id: str, conf: Confirmation) -> Message:
    return simple(
        f":wastebasket: <@{user_id}> deleted backup *#{conf.backup_id}* ({escape(conf.backup_type)}) of "
        f"{server_words(conf.server_id, conf.server_name)}."
    )


def announce_restore(user_id: str, conf: Confirmation) -> Message:
    source = (
        ""
        if conf.server_id == conf.target_server_id
        else f" (a backup of {server_words(conf.server_id, conf.server_name)})"
    )
    return simple(
        f":recycle: <@{user_id}> started restoring {server_words(conf.target_server_id, conf.target_server_name)} "
        f"from backup *#{conf.backup_id}*{source}."
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


def flatten_text(blocks: Iterable[dict]) -> str:
    """The mrkdwn of every section and context, for tests and logs."""
    parts = []
    for block in blocks:
        if "text" in block and isinstance(block["text"], dict):
            parts.append(block["text"]["text"])
        for element in block.get("elements", []):
            if isinstance(element.get("text"), str):
                parts.append(element["text"])
            elif isinstance(element.get("text"), dict):
                parts.append(element["text"]["text"])
    return "\n".join(parts)
