"""Messages: replies to the person and announcements to the team.

Every message is a dict with a plain `text` fallback and `blocks`, and never
exceeds Slack's 50 blocks: long lists are paged.
"""

from __future__ import annotations

import json
from datetime import datetime

from bot.backup_api import MANUAL_LIMIT, Backup
from bot.clock import utc_now
from bot.i18n import Words, _, for_the_team, language_name, ngettext, status_word, type_word
from bot.ops import Accepted, Done, Listing, ServerAccess
from bot.ops.pipelines import NO_ROOM
from bot.parsing import SUBCOMMANDS
from bot.policy import ADMIN_ONLY, FOR_ANYONE, REQUIRED_ROLE, Action, Role, backup_actions, is_allowed
from bot.slack.ids import CANCEL, CONFIRM_DELETE, DELETE_REQUEST, LIST_NEXT, LIST_PREV, OPEN_RESTORE, RESTORE_REQUEST
from bot.slack.views.base import (
    AUDIT_OUTCOME,
    MAX_BLOCKS,
    MAX_SECTION,
    PAGE_SIZE,
    Message,
    ago,
    api_said,
    backup_text,
    button,
    confirmation_facts,
    context,
    escape,
    example_words,
    message,
    pipeline_words,
    plain,
    plain_server,
    role_words,
    section,
    server_words,
    simple,
    size_words,
    slack_date,
    state_words,
    strip_marks,
    truncate,
    with_note,
)
from bot.slack.views.safety import what_restore_undoes
from bot.store import ApprovalRequest, AuditEntry, Confirmation, Followed, PipelineRun, RunStatus


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
    lines = [f"`{syntax.usage}`\n      {_(syntax.summary)}{who}" for syntax, who in rows]
    examples = "\n".join(f"`{example_words(syntax.example)}`" for syntax, _who in rows if syntax.example)
    intro = _("*Manage VPS.org backups from Slack*") + "\n" + _("Type the commands and their words as shown here.")
    blocks = [section(intro + "\n" + "\n".join(lines))]
    if examples:
        blocks.append(section(_("*Examples*") + "\n" + examples))
    footer = escape(_("Roles per server: viewer < operator < owner. Admins may do everything."))
    if others:
        footer = _("Also there, with more rights: {commands}. An admin can give a role with `/backup grant`.").format(
            commands=", ".join(others)
        )
    blocks.append(context(footer))
    return message(_("How to use /backup"), blocks)


def _who_may(action: Action) -> str:
    """Who may use a subcommand; role words stay English, as they are typed in `/backup grant`."""
    if action in FOR_ANYONE:
        return ""
    if action in ADMIN_ONLY:
        return f" ({_('admin')})"
    return f" ({REQUIRED_ROLE[action].label})"


def listing_message(listing: Listing, now: datetime, offset: int = 0, page_size: int = PAGE_SIZE) -> Message:
    total = len(listing.backups)
    offset = max(0, min(offset, max(total - 1, 0)))
    page = listing.backups[offset : offset + page_size]
    kind = f"{type_word(listing.backup_type)} " if listing.backup_type else ""
    if not total:
        if listing.server_id is None:
            text = _("No {kind}backups on any server you may see.").format(kind=kind)
        else:
            text = _("No {kind}backups on {server}.").format(kind=kind, server=_scope_name(listing))
        if listing.server_id is None and not listing.is_admin and not listing.roles:
            text += " " + _("You have no role on any server yet: ask an admin for one (`/backup grant`).")
        return simple(text)
    scope = _("every server you may see") if listing.server_id is None else _scope_name(listing)
    head = ngettext(
        "*{n} {kind}backup* on {scope}, newest first.", "*{n} {kind}backups* on {scope}, newest first.", total
    ).format(n=total, kind=kind, scope=scope)
    blocks = [section(head)]
    offered: dict[Role | None, list[Action]] = {}
    for backup in page:
        blocks.append(section(backup_text(backup, now)))
        role = listing.role_on(backup.server.id)
        actions = offered.get(role)
        if actions is None:
            actions = offered[role] = backup_actions(is_admin=listing.is_admin, role=role)
        buttons = []
        if Action.RESTORE in actions and backup.is_restorable:
            buttons.append(button(_("Restore…"), RESTORE_REQUEST, str(backup.id)))
        if Action.DELETE in actions:
            buttons.append(button(_("Delete…"), DELETE_REQUEST, str(backup.id), style="danger"))
        if buttons:
            blocks.append({"type": "actions", "block_id": f"backup-{backup.id}", "elements": buttons})
    shown = _("Showing {first}–{last} of {total}.").format(first=offset + 1, last=offset + len(page), total=total)
    blocks.append(context(shown + " " + _("Times in your time zone; sizes in GB of 1024 MB.")))
    paging = []
    state = {"s": listing.server_id, "t": listing.backup_type}
    if offset > 0:
        paging.append(button(_("‹ Newer"), LIST_PREV, json.dumps({**state, "o": max(0, offset - page_size)})))
    if offset + page_size < total:
        paging.append(
            button(
                _("Older ({n} more) ›").format(n=total - offset - page_size),
                LIST_NEXT,
                json.dumps({**state, "o": offset + page_size}),
            )
        )
    if paging:
        blocks.append({"type": "actions", "block_id": "paging", "elements": paging})
    return message(strip_marks(head), blocks)


def _scope_name(listing: Listing) -> str:
    names = {b.server.id: b.server.name for b in listing.backups}
    return server_words(listing.server_id, names.get(listing.server_id))


def servers_message(access: list[ServerAccess]) -> Message:
    if not access:
        return simple(_("You have no role on any server yet. An admin can give you one with `/backup grant`."))
    rule = _("two-person rule")
    lines = [
        f"• {server_words(a.server_id, a.name)} — {role_words(a.role)}" + (f" · {rule}" if a.approvals else "")
        for a in access
    ]
    title = _("*Servers you may touch ({n})*").format(n=len(access))
    return _chunked(title, lines, strip_marks(title))


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
        return simple(_("The audit log is empty."))
    lines = [audit_line(e) for e in entries]
    title = ngettext("*The last audit entry*", "*Last {n} audit entries, newest first*", len(entries)).format(
        n=len(entries)
    )
    return _chunked(title, lines, strip_marks(title))


OUTCOME_ICON = {
    "done": ":white_check_mark:",
    "denied": ":no_entry:",
    "failed": ":x:",
    "cancelled": ":leftwards_arrow_with_hook:",
}


def audit_line(e: AuditEntry) -> str:
    who = f"<@{e.user_id}>" if ":" not in e.user_id else f"`{escape(e.user_id)}`"  # cli:LOGIN, token:NAME
    target = ""
    if e.backup_id:
        target += f" #{e.backup_id}"
    if e.server_id:
        target += " " + _("on {id}").format(id=e.server_id)
    detail = f" — {escape(truncate(e.detail_line, 120))}" if e.detail else ""
    outcome = state_words(AUDIT_OUTCOME, e.outcome)
    return f"{OUTCOME_ICON.get(e.outcome, '')} `{e.at[:16].replace('T', ' ')}` {who} *{e.action}*{target} → {outcome} ({e.source}){detail}"


# --- create and follow --------------------------------------------------------------


def created_message(backup: Backup, now: datetime) -> Message:
    text = _(
        ":hourglass_flowing_sand: Backup *#{id}* of {server} has started. I'll update this message when it is done."
    ).format(id=backup.id, server=server_words(backup.server.id, backup.server.name))
    blocks = [section(text), section(backup_text(backup, now))]
    if backup.message:
        blocks.append(context(api_said(backup.message)))
    return message(_("Backup #{id} started").format(id=backup.id), blocks)


def modal_not_opened_message(error: str) -> Message:
    if error in ("expired_trigger_id", "invalid_trigger_id", "exchanged_trigger_id"):
        return simple(
            _(":hourglass: Slack took too long to open the form, so nothing was done. Press the button again.")
        )
    return simple(
        _(":warning: Slack would not open the form ({error}), so nothing was done. Press the button again.").format(
            error=escape(error)
        )
    )


def accepted_message(accepted: Accepted) -> Message:
    """A create the API accepted but whose answer could not be read: it happened; don't invite a duplicate."""
    return simple(
        _(
            ":floppy_disk: The backup API *accepted* the backup of server *{id}*, but its answer could not be read, "
            "so I can't show or follow it. Check `/backup list {id} manual` before trying again: it is probably there."
        ).format(id=accepted.server_id)
    )


def announce_accepted(user_id: str, accepted: Accepted) -> Message:
    desc = f": “{escape(accepted.description)}”" if accepted.description else ""
    return simple(
        _(
            ":floppy_disk: <@{user}> started a manual backup of server *{id}*{desc} "
            "(the backup API's answer could not be read, so it is not followed)."
        ).format(user=user_id, id=accepted.server_id, desc=desc)
    )


def finished_message(backup: Backup, now: datetime) -> Message:
    """The reply to `create`, updated in place when the backup ends."""
    if backup.status == "completed":
        head = _(":white_check_mark: Backup *#{id}* is complete ({size}).").format(
            id=backup.id, size=size_words(backup.size_mb)
        )
    else:
        head = _(":rotating_light: Backup *#{id}* ended *{status}*: it is *not* usable.").format(
            id=backup.id, status=escape(status_word(backup.status))
        )
    return message(head, [section(head), section(backup_text(backup, now))])


def ended_message(backup_id: int, why: Words) -> Message:
    return simple(_(":warning: I stopped following backup *#{id}*: {why}").format(id=backup_id, why=why))


# --- confirmations ---------------------------------------------------------------------


def delete_confirmation_message(conf: Confirmation, grace_seconds: float = 0, *, ruled: bool = False) -> Message:
    """The delete to confirm, saying what happens after the press: under the two-person rule it waits for
    a second person's approval and, once approved, is sent at once (no undo window); else, with an undo
    window, how long Undo will be offered."""
    if ruled:
        then = _(
            "This server is under the two-person rule: after you confirm, a second owner or an admin must approve "
            "it, and once approved it is deleted at once, with no undo."
        )
        dialog_text = _("Backup #{id} of {server} will be gone for good once it is approved. This cannot be undone.")
    elif grace_seconds:
        then = _("After you confirm, you can still undo it for {n} seconds; then it is gone for good.")
        dialog_text = _("Backup #{id} of {server} will be gone for good once its {n}-second undo window ends.")
    else:
        then = _("This cannot be undone.")
        dialog_text = _("Backup #{id} of {server} will be gone for good. This cannot be undone.")
    text = _(":warning: *Delete this backup?*\n{facts} will be deleted *permanently*.").format(
        facts=confirmation_facts(conf)
    )
    text += " " + then.format(n=f"{grace_seconds:g}")
    dialog = {
        "title": plain(_("Delete backup #{id}?").format(id=conf.backup_id)),
        "text": plain(
            truncate(dialog_text.format(id=conf.backup_id, server=conf.server_name, n=f"{grace_seconds:g}"), 300)
        ),
        "confirm": plain(_("Delete it")),
        "deny": plain(_("Keep it")),
        "style": "danger",
    }
    buttons = [
        button(
            _("Delete backup #{id}").format(id=conf.backup_id), CONFIRM_DELETE, conf.id, style="danger", confirm=dialog
        ),
        button(_("Cancel"), CANCEL, conf.id),
    ]
    return message(
        _("Confirm: delete backup #{id}?").format(id=conf.backup_id),
        [section(text), {"type": "actions", "block_id": "confirm", "elements": buttons}],
    )


def restore_confirmation_message(conf: Confirmation, now: datetime | None = None) -> Message:
    """The restore to confirm, with what it undoes: when the backup was taken and the newer ones there are."""
    target = server_words(conf.target_server_id, conf.target_server_name)
    if conf.safety:
        safety = _(
            "Next, you will be asked to type the server's name; you can first take a safety backup of its current state (ticked by default)."
        )
    else:
        safety = _(
            "Next, you will be asked to type the server's name; this time *without* a safety backup (you can still tick it)."
        )
    text = (
        _(":warning: *Restore {server} from a backup?*").format(
            server=plain_server(conf.target_server_id, conf.target_server_name)
        )
        + "\n"
        + _(
            "{facts} will replace everything on {target}. Whatever was written there since is *lost*; this cannot be undone."
        ).format(facts=confirmation_facts(conf), target=target)
        + "\n"
        + what_restore_undoes(conf, now or utc_now())
        + "\n"
        + safety
    )
    buttons = [
        button(_("Restore {server}…").format(server=conf.target_server_name), OPEN_RESTORE, conf.id, style="danger"),
        button(_("Cancel"), CANCEL, conf.id),
    ]
    return message(
        _("Confirm: restore {server} from backup #{id}?").format(server=conf.target_server_name, id=conf.backup_id),
        [section(text), {"type": "actions", "block_id": "confirm", "elements": buttons}],
    )


def deleted_message(done: Done) -> Message:
    conf = done.confirmation
    return simple(
        _(":wastebasket: Deleted backup *#{id}* of {server}.").format(
            id=conf.backup_id, server=server_words(conf.server_id, conf.server_name)
        )
    )


def restore_started_message(done: Done) -> Message:
    conf = done.confirmation
    text = _(":recycle: Restore of {server} from backup *#{id}* has started.").format(
        server=server_words(conf.target_server_id, conf.target_server_name), id=conf.backup_id
    )
    if done.provider_message:
        return with_note(simple(text), api_said(done.provider_message))
    return simple(text)


def cancelled_message(conf: Confirmation) -> Message:
    if conf.action == "restore":
        text = _(":leftwards_arrow_with_hook: Cancelled: the restore from backup *#{id}*. Nothing was changed.")
    else:
        text = _(":leftwards_arrow_with_hook: Cancelled: the delete of backup *#{id}*. Nothing was changed.")
    return simple(text.format(id=conf.backup_id))


def channels_message(server_id: int, channels: list[str], changed: tuple[str, bool, bool] | None = None) -> Message:
    lines = []
    if changed is not None:
        channel, added, did = changed
        if did:
            line = (
                _(":round_pushpin: Server *{id}* is now bound to <#{channel}>.")
                if added
                else _(":round_pushpin: Server *{id}* is no longer bound to <#{channel}>.")
            )
        else:
            line = (
                _(":round_pushpin: Server *{id}* is already bound to <#{channel}>.")
                if added
                else _(":round_pushpin: Server *{id}* was not bound to <#{channel}>.")
            )
        lines.append(line.format(id=server_id, channel=channel))
    if channels:
        where = ", ".join(f"<#{c}>" for c in channels)
        lines.append(
            _(
                "Server *{id}* is run from and announced in {channels}: its backups are created, deleted and "
                "restored only there. Listing works anywhere."
            ).format(id=server_id, channels=where)
        )
    else:
        lines.append(_("Server *{id}* has no channels of its own: it may be run from anywhere.").format(id=server_id))
    return simple("\n".join(lines))


@for_the_team
def announce_channel_bound(server_id: int, user_id: str) -> Message:
    """Posted in a channel as it is bound: the bot can post there, and the team learns what it now carries."""
    return simple(
        _(
            ":round_pushpin: This channel now carries the news of server *{id}* (bound by <@{user}>): its backups "
            "are announced here, and created, deleted and restored only from its channels."
        ).format(id=server_id, user=user_id)
    )


def approvals_set_message(server_id: int, on: bool, changed: bool) -> Message:
    if on and changed:
        text = _(
            ":raised_hand: The two-person rule is now *on* for server *{id}*: each delete and restore waits for a second owner or an admin to approve it."
        )
    elif on:
        text = _(
            ":raised_hand: The two-person rule is already *on* for server *{id}*: each delete and restore waits for a second owner or an admin to approve it."
        )
    elif changed:
        text = _(":unlock: The two-person rule is now *off* for server *{id}*.")
    else:
        text = _(":unlock: The two-person rule is already *off* for server *{id}*.")
    return simple(text.format(id=server_id))


def granted_message(user_id: str, server_id: int, role_label: str) -> Message:
    return simple(
        _(":key: <@{user}> is now *{role}* on server *{id}*.").format(user=user_id, role=role_label, id=server_id)
    )


def revoked_message(user_id: str, server_id: int, removed: bool) -> Message:
    if removed:
        return simple(_(":lock: <@{user}> no longer has a role on server *{id}*.").format(user=user_id, id=server_id))
    return simple(_("<@{user}> had no role on server *{id}*; nothing changed.").format(user=user_id, id=server_id))


def language_message(language: str, changed: bool | None) -> Message:
    """`/backup language`: what it is, or what it now is (in that language)."""
    name = language_name(language)
    if changed is None:
        text = _(
            ":speech_balloon: I speak {language} with you. `/backup language ko` or `/backup language en` changes it."
        )
    elif changed:
        text = _(":speech_balloon: From now on I speak {language} with you.")
    else:
        text = _(":speech_balloon: I already speak {language} with you.")
    return simple(text.format(language=name))


# --- announcements (to the team) ---------------------------------------------------------


@for_the_team
def announce_created(user_id: str, backup: Backup) -> Message:
    desc = f": “{escape(backup.description)}”" if backup.description else ""
    return simple(
        _(":floppy_disk: <@{user}> started a manual backup *#{id}* of {server}{desc}").format(
            user=user_id, id=backup.id, server=server_words(backup.server.id, backup.server.name), desc=desc
        )
    )


def _approved(approved_by: str | None) -> str:
    return _(", approved by <@{user}>").format(user=approved_by) if approved_by else ""


@for_the_team
def announce_deleted(user_id: str, conf: Confirmation | ApprovalRequest, approved_by: str | None = None) -> Message:
    return simple(
        _(":wastebasket: <@{user}> deleted backup *#{id}* ({type}) of {server}{approved}.").format(
            user=user_id,
            id=conf.backup_id,
            type=escape(type_word(conf.backup_type)),
            server=server_words(conf.server_id, conf.server_name),
            approved=_approved(approved_by),
        )
    )


@for_the_team
def announce_restore(user_id: str, conf: Confirmation | ApprovalRequest, approved_by: str | None = None) -> Message:
    source = (
        ""
        if conf.server_id == conf.target_server_id
        else _(" (a backup of {server})").format(server=server_words(conf.server_id, conf.server_name))
    )
    return simple(
        _(":recycle: <@{user}> started restoring {target} from backup *#{id}*{source}{approved}.").format(
            user=user_id,
            target=server_words(conf.target_server_id, conf.target_server_name),
            id=conf.backup_id,
            source=source,
            approved=_approved(approved_by),
        )
    )


@for_the_team
def announce_finished(followed: Followed, backup: Backup, manual_count: int | None) -> Message:
    who = f"<@{followed.requested_by}>"
    where = server_words(backup.server.id, backup.server.name)
    if backup.status == "completed":
        text = _(":white_check_mark: Backup *#{id}* of {server} is complete ({size}) — asked for by {user}.").format(
            id=backup.id, server=where, size=size_words(backup.size_mb), user=who
        )
    else:
        text = _(
            ":rotating_light: *Backup #{id} of {server} FAILED* — it ended *{status}* and cannot be restored. "
            "Asked for by {user}; take another before any risky change."
        ).format(
            id=backup.id,
            server=plain_server(backup.server.id, backup.server.name),
            status=escape(status_word(backup.status)),
            user=who,
        )
    if manual_count is not None and manual_count >= MANUAL_LIMIT - 1:
        text += "\n" + quota_warning(where, manual_count)
    return simple(text)


def quota_warning(where: str, manual_count: int) -> str:
    if manual_count >= MANUAL_LIMIT:
        text = _(
            ":warning: {server} now has *{n} of {limit}* manual backups: the next `create` will be refused until one is deleted."
        )
    else:
        text = _(":warning: {server} now has *{n} of {limit}* manual backups: one more fits.")
    return text.format(server=where, n=manual_count, limit=MANUAL_LIMIT)


@for_the_team
def announce_automatic_failed(backup: Backup, now: datetime) -> Message:
    return simple(
        _(
            ":rotating_light: *Automatic backup #{id} of {server} ended {status}* ({ago}): it cannot be restored. "
            "The last good one is in `/backup list {server_id}`; consider `/backup create {server_id}`."
        ).format(
            id=backup.id,
            server=plain_server(backup.server.id, backup.server.name),
            status=escape(status_word(backup.status)),
            ago=ago(backup.created_at, now),
            server_id=backup.server.id,
        )
    )


@for_the_team
def announce_ended(followed: Followed, why: Words) -> Message:
    return simple(
        _(
            ":warning: I stopped following backup *#{id}* of server *{server_id}* (asked for by <@{user}>): {why}"
        ).format(id=followed.backup_id, server_id=followed.server_id, user=followed.requested_by, why=why)
    )


# --- pipelines (bot/ops/pipelines.py) --------------------------------------------------------


def took_words(seconds: float) -> str:
    """How long a backup took, in the reader's words: `45 seconds`, `4 min`, `1 h 5 min`."""
    if seconds < 60:
        count = max(1, round(seconds))
        return ngettext("{n} second", "{n} seconds", count).format(n=count)
    minutes = round(seconds / 60)
    if minutes < 60:
        return _("{n} min").format(n=minutes)
    return _("{h} h {m} min").format(h=minutes // 60, m=minutes % 60)


@for_the_team
def announce_run(run: PipelineRun) -> Message:
    """A pipeline's run, for the server's channels: the backup it took, or why it took none."""
    who = pipeline_words(run.actor)
    server = server_words(run.server_id, run.server_name)
    if run.status in (RunStatus.IN_PROGRESS, RunStatus.COMPLETED):
        desc = f": “{escape(run.description)}”" if run.description else ""
        return simple(
            _(":floppy_disk: {who} took backup *#{id}* of {server}{desc}").format(
                who=who, id=run.backup_id, server=server, desc=desc
            )
        )
    values = {"who": who, "server": server, "server_id": run.server_id, "why": escape(run.detail)}
    if run.status is RunStatus.UNKNOWN:
        text = _(
            ":warning: A backup of {server} asked for by {who} may have been created: the backup API did not "
            "confirm it (“{why}”). Check `/backup list {server_id} manual` before trying again."
        ).format(**values)
    elif run.refusal == NO_ROOM:
        text = _(
            ":warning: {who} could not take a backup of {server}: it already has {limit} of {limit} manual "
            "backups, the most VPS.org keeps."
        ).format(**values, limit=MANUAL_LIMIT)
        if run.oldest:
            oldest = run.oldest
            desc = f" — “{escape(oldest['description'])}”" if oldest.get("description") else ""
            text += " " + _("The oldest manual one is *#{id}*, taken {date}{desc}.").format(
                id=oldest["id"], date=slack_date(datetime.fromisoformat(oldest["created_at"])), desc=desc
            )
    elif run.backup_id:
        text = _(":rotating_light: *Backup #{id} of {plain} FAILED* (taken by {who}): “{why}”.").format(
            **values, id=run.backup_id, plain=plain_server(run.server_id, run.server_name)
        )
    else:
        text = _(":x: {who} could not take a backup of {server}: none was created (“{why}”).").format(**values)
    return simple(text)


@for_the_team
def announce_pipeline_finished(followed: Followed, backup: Backup, manual_count: int | None, now: datetime) -> Message:
    """A pipeline's backup completed, and how long it took (one that failed is an alert's card: watching.py)."""
    where = server_words(backup.server.id, backup.server.name)
    text = _(":white_check_mark: Backup *#{id}* of {server}, taken by {who}, completed in {took} ({size}).").format(
        id=backup.id,
        server=where,
        who=pipeline_words(followed.requested_by),
        took=took_words((now - followed.started_at).total_seconds()),
        size=size_words(backup.size_mb),
    )
    if manual_count is not None and manual_count >= MANUAL_LIMIT - 1:
        text += "\n" + quota_warning(where, manual_count)
    return simple(text)


@for_the_team
def announce_pipeline_ended(followed: Followed, why: Words) -> Message:
    return simple(
        _(":warning: I stopped following backup *#{id}* of server *{server_id}* (taken by {who}): {why}").format(
            id=followed.backup_id, server_id=followed.server_id, who=pipeline_words(followed.requested_by), why=why
        )
    )
