"""Refusals and failures put into words for Slack: the one place errors become Slack text."""

from __future__ import annotations

from bot.backup_api import (
    MANUAL_LIMIT,
    ApiTimeout,
    BackupApiError,
    BadRequest,
    NotFound,
    NotSent,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from bot.i18n import N_, _, status_word
from bot.ops import (
    ApprovalUnavailable,
    BackupNotFound,
    BadSchedule,
    ChannelUnusable,
    ConfirmationMismatch,
    ConfirmationUnavailable,
    Interrupted,
    KeepTooMany,
    KeyReused,
    LowerKeepInSlack,
    MayHaveHappened,
    NoPolicy,
    NoRoom,
    NotPinnable,
    NotRestorable,
    NotTheRequester,
    OpsError,
    OwnRequest,
    PermissionDenied,
    RuledServer,
    SafetyBackupFailed,
    TokenNameTaken,
    TokenRefused,
    UndoUnavailable,
    WrongChannel,
)
from bot.parsing import UsageError
from bot.policy import Action
from bot.slack.views import outcomes, safety
from bot.slack.views.base import CONFIRMATION_STATE, Message, escape, example_words, simple, state_words
from bot.store import ApprovalState, Confirmation, ConfirmationState, StoreUnavailable


def usage_error_message(error: UsageError) -> Message:
    text = f":warning: {escape(error.problem)}."
    if error.subcommand == "help":
        text += " " + _("Try `/backup help` for the list of commands.")
    if error.usage:
        text += "\n" + _("Usage: `{usage}`").format(usage=error.usage)
    if error.example:
        text += "\n" + _("Example: `{example}`").format(example=example_words(error.example))
    return simple(text)


ACTION_VERBS = {
    Action.LIST: N_("list backups"),
    Action.CREATE: N_("create a backup"),
    Action.DELETE: N_("delete a backup"),
    Action.RESTORE: N_("restore"),
    Action.GRANT: N_("grant roles"),
    Action.REVOKE: N_("revoke roles"),
    Action.AUDIT: N_("read the audit log"),
    Action.SERVERS: N_("list servers"),
    Action.ADMIN: N_("change who is an admin"),
    Action.APPROVALS: N_("turn the two-person rule on or off"),
    Action.APPROVE: N_("approve this"),
    Action.DENY: N_("deny this"),
    Action.CHANNELS: N_("change a server's channels"),
    Action.LANGUAGE: N_("choose a language"),
    Action.STATUS: N_("see whether its servers are backed up"),
    Action.POLICY: N_("change a server's policy"),
    Action.DIGEST: N_("set a digest"),
    Action.TOKENS: N_("manage pipeline tokens"),
}


def error_text(error: Exception) -> str:
    """Words for a refusal or failure: the one place errors become Slack text."""
    if isinstance(error, UsageError):
        return usage_error_message(error)["text"]
    if isinstance(error, PermissionDenied):
        verb = _(ACTION_VERBS[error.action])
        if error.needed == "admin":
            return _(":no_entry: Only an admin may {verb}.").format(verb=verb)
        if error.server_id is not None:
            text = _(":no_entry: You can't {verb} on server *{id}*: that needs the *{role}* role.")
        else:
            text = _(":no_entry: You can't {verb}: that needs the *{role}* role.")
        return (
            text.format(verb=verb, id=error.server_id, role=error.needed)
            + " "
            + _("An admin can give it with `/backup grant`.")
        )
    if isinstance(error, BackupNotFound):
        if error.gone:
            return _(":mag: Backup *#{id}* no longer exists, so nothing was done.").format(id=error.backup_id)
        return _(":mag: There is no backup *#{id}*. `/backup list` shows the ones there are.").format(
            id=error.backup_id
        )
    if isinstance(error, NotRestorable):
        return _(":warning: Backup *#{id}* is {status}: only a completed backup can be restored.").format(
            id=error.backup.id, status=escape(status_word(error.backup.status))
        )
    if isinstance(error, ConfirmationUnavailable):
        return confirmation_unavailable_text(error.confirmation)
    if isinstance(error, ConfirmationMismatch):
        return mismatch_text(error.confirmation)
    if isinstance(error, Unauthorized):
        return _(
            ":lock: The backup API refused the bot's credentials (401), so nothing was done. "
            "An admin needs to check the bot's VPS_API_TOKEN."
        )
    if isinstance(error, BadRequest):
        return _(":x: The backup API refused this: “{words}”. Nothing was changed.").format(
            words=escape(error.provider_message)
        )
    if isinstance(error, NotFound):
        return _(":mag: The backup API says it can't find that: “{words}” (404).").format(words=escape(error))
    if isinstance(error, WrongChannel):
        where = ", ".join(f"<#{c}>" for c in error.channels)
        return _(":round_pushpin: Server *{id}* is run only from {channels}: ask there. Nothing was done.").format(
            id=error.server_id, channels=where
        )
    if isinstance(error, OwnRequest):
        return _(
            ":no_entry: You asked for this, so someone else must decide: an owner of the server or an admin. "
            "Nothing was done."
        )
    if isinstance(error, NotTheRequester):
        return _(":no_entry: Only <@{user}>, who asked, may withdraw this request.").format(
            user=error.request.requested_by
        )
    if isinstance(error, ApprovalUnavailable):
        return approval_unavailable_text(error)
    if isinstance(error, NoRoom | SafetyBackupFailed):
        return error_message(error)["text"]
    if isinstance(error, UndoUnavailable):
        return safety.undo_unavailable_text(error.window)
    if isinstance(error, ChannelUnusable):
        if error.server_id is None:
            return _(":no_entry: I could not post in <#{channel}>, so no digest was set there: {why}.").format(
                channel=error.channel_id, why=escape(error.why)
            )
        return _(":no_entry: I could not post in <#{channel}>, so server *{id}* was not bound to it: {why}.").format(
            channel=error.channel_id, id=error.server_id, why=escape(error.why)
        )
    if isinstance(error, BadSchedule):
        bounds = _("A pause lasts at most 7 days.") if error.what == "pause" else _("Stale takes 1 to 8760 hours.")
        return _(":warning: `{what} {value}` is out of bounds, so nothing was changed. {usage}").format(
            what=escape(error.what), value=escape(error.value), usage=bounds
        )
    if isinstance(error, KeepTooMany):
        return _(
            ":no_entry: That keeps {most} backups, but server *{id}* has room for {fits}: {limit} manual slots "
            "− {reserved} kept free − {other} other manual backups − 1 for the next backup = {fits}. "
            "Nothing was changed. Keep fewer, or delete or unpin other manual backups first."
        ).format(
            most=error.keep.most,
            id=error.server_id,
            fits=max(error.fits, 0),
            limit=MANUAL_LIMIT,
            reserved=error.reserved,
            other=error.other,
        )
    if isinstance(error, NoPolicy) and error.off:
        return _(
            ":grey_question: Server *{id}*'s backup policy is off, so nothing was changed. "
            "Set its schedule again to turn it on: `/backup policy {id} daily 02:00`."
        ).format(id=error.server_id)
    if isinstance(error, LowerKeepInSlack):
        return _(
            ":raised_hand: Server *{id}* is under the two-person rule: ask for a lower keep with `/backup policy` "
            "in Slack, where a second owner approves it. Nothing was changed."
        ).format(id=error.server_id)
    if isinstance(error, NoPolicy):
        return _(
            ":grey_question: Server *{id}* has no backup policy, so nothing was changed. "
            "Set a schedule first: `/backup policy {id} daily 02:00`."
        ).format(id=error.server_id)
    if isinstance(error, NotPinnable):
        return _(
            ":warning: Backup *#{id}* is automatic: the provider keeps and expires those by itself, and no policy "
            "prunes them. Only manual backups are pinned. Nothing was changed."
        ).format(id=error.backup.id)
    if isinstance(error, MayHaveHappened):
        return outcomes.unknown_text(error.sent)
    if isinstance(error, NotSent):
        return _(
            ":electric_plug: The backup API could not be reached, so nothing was sent and nothing changed. "
            "Try again in a minute; if it lasts, tell an admin."
        )
    if isinstance(error, Interrupted):
        return _(":warning: Interrupted: {why}").format(why=error.why)
    if isinstance(error, RuledServer):
        return _(
            ":raised_hand: Server *{id}* is under the two-person rule, so making room is not one step here: "
            "delete the oldest backup with `/backup delete` (a second person approves), then create again."
        ).format(id=error.server_id)
    if isinstance(error, TokenRefused):
        if error.forbidden:
            return _(
                ":no_entry: The pipeline token *{name}* does not reach server *{id}*, so nothing was done."
            ).format(name=escape(error.name), id=error.server_id)
        if error.revoked:
            return _(":lock: The pipeline token *{name}* was revoked, so nothing was done.").format(
                name=escape(error.name)
            )
        return _(":lock: That pipeline token is not known to the bot, so nothing was done.")
    if isinstance(error, TokenNameTaken):
        return _(
            ":warning: A pipeline token named *{name}* exists already (revoked tokens keep their names): "
            "choose another name."
        ).format(name=escape(error.name))
    if isinstance(error, KeyReused):
        return _(
            ":warning: That Idempotency-Key was already used for another request (run `{run}`), so nothing was "
            "done: use a new key."
        ).format(run=error.run_id)
    if isinstance(error, StoreUnavailable):
        return _(
            ":floppy_disk: The bot's store is unavailable right now ({problem}), so nothing was done. "
            "Try again in a minute; if it lasts, tell an admin."
        ).format(problem=escape(error))
    if isinstance(error, RateLimited):
        return _(
            ":snail: The backup API is rate-limiting the bot right now (429). Nothing was changed; "
            "try again in a minute."
        )
    if isinstance(error, ApiTimeout):
        return _(":hourglass: The backup API didn't answer in time, so nothing was changed. Try again in a minute.")
    if isinstance(error, Unavailable):
        return _(
            ":construction: The backup API is unavailable right now ({problem}), so nothing was changed. "
            "Try again in a few minutes."
        ).format(problem=escape(error))
    if isinstance(error, BackupApiError | OpsError):
        return f":warning: {escape(error)}"
    return _(":boom: Something went wrong inside the bot and it was logged. Nothing more was done; please try again.")


def error_message(error: Exception) -> Message:
    """The reply for a refusal or failure; a few carry a button that offers the way on."""
    if isinstance(error, NoRoom):
        return safety.no_room_message(error)
    if isinstance(error, SafetyBackupFailed):
        return safety.safety_failed_message(error)
    return simple(error_text(error))


def confirmation_unavailable_text(conf: Confirmation | None) -> str:
    if conf is None:
        return _(":grey_question: I don't know this confirmation any more. Nothing was done; run the command again.")
    restore = conf.action == "restore"
    if conf.state is ConfirmationState.USED:
        text = (
            _(
                ":ballot_box_with_check: The restore from backup *#{id}* was already confirmed by <@{user}>. Nothing more was done."
            )
            if restore
            else _(
                ":ballot_box_with_check: The delete of backup *#{id}* was already confirmed by <@{user}>. Nothing more was done."
            )
        )
    elif conf.state is ConfirmationState.CANCELLED:
        text = (
            _(
                ":leftwards_arrow_with_hook: The restore from backup *#{id}* was cancelled by <@{user}>. Nothing was done."
            )
            if restore
            else _(
                ":leftwards_arrow_with_hook: The delete of backup *#{id}* was cancelled by <@{user}>. Nothing was done."
            )
        )
    elif conf.state is ConfirmationState.EXPIRED:
        text = _(
            ":alarm_clock: This confirmation has expired, so nothing was done. "
            "Run `/backup {action} {id}` again if you still want it."
        )
    elif conf.state is ConfirmationState.GONE:
        text = _(":mag: Backup *#{id}* no longer exists, so nothing was done.")
    elif conf.state is ConfirmationState.UNRESTORABLE:
        text = _(":warning: Backup *#{id}* was no longer complete when the restore was confirmed, so nothing was sent.")
    elif conf.state is ConfirmationState.FAILED:
        text = _(
            ":x: <@{user}> confirmed this, but the backup API failed, so this confirmation is spent. "
            "Check `/backup list` — it may have happened — then run `/backup {action} {id}` again if it is still needed."
        )
    else:
        text = _(":grey_question: This confirmation is {state}. Nothing was done.")
    state = state_words(CONFIRMATION_STATE, conf.state)
    return text.format(id=conf.backup_id, user=conf.used_by, action=conf.action, state=state)


def approval_unavailable_text(error: ApprovalUnavailable) -> str:
    request = error.request
    if request is None:
        return _(":grey_question: I don't know this approval request. Nothing was done.")
    if error.expired or request.state is ApprovalState.EXPIRED:
        text = _(
            ":alarm_clock: The request about backup *#{id}* has expired, so nothing was done. It can be asked for again."
        )
    elif not request.decided_by:
        text = _(":ballot_box_with_check: The request about backup *#{id}* was already decided. Nothing more was done.")
    elif request.state in (ApprovalState.APPROVED, ApprovalState.DONE, ApprovalState.FAILED):
        text = _(
            ":ballot_box_with_check: The request about backup *#{id}* was already approved by <@{user}>. "
            "Nothing more was done."
        )
    elif request.state is ApprovalState.DENIED:
        text = _(
            ":ballot_box_with_check: The request about backup *#{id}* was already denied by <@{user}>. "
            "Nothing more was done."
        )
    else:
        text = _(
            ":ballot_box_with_check: The request about backup *#{id}* was already withdrawn by <@{user}>. "
            "Nothing more was done."
        )
    return text.format(id=request.backup_id, user=request.decided_by)


def mismatch_text(conf: Confirmation) -> str:
    return _("That is not this server. Type {name} or {id} exactly.").format(
        name=conf.target_server_name, id=conf.target_server_id
    )


def interrupted_message() -> Message:
    """For work cut short because the bot had to stop before it finished."""
    return simple(
        _(
            ":warning: The bot had to stop before your request finished. If you were changing something, "
            "it may still have happened: check `/backup list` before trying again."
        )
    )
