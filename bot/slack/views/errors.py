"""Refusals and failures put into words for Slack: the one place errors become Slack text."""

from __future__ import annotations

from bot.backup_api import (
    ApiTimeout,
    BackupApiError,
    BadRequest,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from bot.ops import (
    ApprovalUnavailable,
    BackupNotFound,
    ConfirmationMismatch,
    ConfirmationUnavailable,
    NoRoom,
    NotRestorable,
    NotTheRequester,
    OpsError,
    OwnRequest,
    PermissionDenied,
    RuledServer,
    SafetyBackupFailed,
    UndoUnavailable,
    WrongChannel,
)
from bot.parsing import UsageError
from bot.policy import Action
from bot.slack.views import safety
from bot.slack.views.base import Message, escape, simple, status_words
from bot.store import ApprovalState, Confirmation, ConfirmationState, StoreUnavailable


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
    Action.APPROVALS: "turn the two-person rule on or off",
    Action.APPROVE: "approve this",
    Action.DENY: "deny this",
    Action.CHANNELS: "change a server's channels",
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
    if isinstance(error, WrongChannel):
        where = ", ".join(f"<#{c}>" for c in error.channels)
        return f":round_pushpin: Server *{error.server_id}* is run only from {where}: ask there. Nothing was done."
    if isinstance(error, OwnRequest):
        return (
            ":no_entry: You asked for this, so someone else must decide: an owner of the server or an admin. "
            "Nothing was done."
        )
    if isinstance(error, NotTheRequester):
        return f":no_entry: Only <@{error.request.requested_by}>, who asked, may withdraw this request."
    if isinstance(error, ApprovalUnavailable):
        return approval_unavailable_text(error)
    if isinstance(error, NoRoom | SafetyBackupFailed):
        return error_message(error)["text"]
    if isinstance(error, UndoUnavailable):
        return safety.undo_unavailable_text(error.window)
    if isinstance(error, RuledServer):
        return (
            f":raised_hand: Server *{error.server_id}* is under the two-person rule, so making room is not one step "
            "here: delete the oldest backup with `/backup delete` (a second person approves), then create again."
        )
    if isinstance(error, StoreUnavailable):
        return (
            f":floppy_disk: The bot's store is unavailable right now ({escape(error)}), so nothing was done. "
            "Try again in a minute; if it lasts, tell an admin."
        )
    if isinstance(error, RateLimited):
        return (
            ":snail: The backup API is rate-limiting the bot right now (429). Nothing was changed; "
            "try again in a minute."
        )
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
    """The reply for a refusal or failure; a few carry a button that offers the way on."""
    if isinstance(error, NoRoom):
        return safety.no_room_message(error)
    if isinstance(error, SafetyBackupFailed):
        return safety.safety_failed_message(error)
    return simple(error_text(error))


def confirmation_unavailable_text(conf: Confirmation | None) -> str:
    if conf is None:
        return ":grey_question: I don't know this confirmation any more. Nothing was done; run the command again."
    what = f"the {conf.action} of backup *#{conf.backup_id}*"
    if conf.state is ConfirmationState.USED:
        return f":ballot_box_with_check: {what.capitalize()} was already confirmed by <@{conf.used_by}>. Nothing more was done."
    if conf.state is ConfirmationState.CANCELLED:
        return f":leftwards_arrow_with_hook: {what.capitalize()} was cancelled by <@{conf.used_by}>. Nothing was done."
    if conf.state is ConfirmationState.EXPIRED:
        return (
            f":alarm_clock: This confirmation for {what} has expired, so nothing was done. "
            f"Run `/backup {conf.action} {conf.backup_id}` again if you still want it."
        )
    if conf.state is ConfirmationState.GONE:
        return f":mag: Backup *#{conf.backup_id}* no longer exists, so nothing was done."
    if conf.state is ConfirmationState.UNRESTORABLE:
        return (
            f":warning: Backup *#{conf.backup_id}* was no longer complete when the restore was confirmed, "
            "so nothing was sent."
        )
    if conf.state is ConfirmationState.FAILED:
        return (
            f":x: <@{conf.used_by}> confirmed {what}, but the backup API failed, so this confirmation is spent. "
            f"Check `/backup list` — it may have happened — then run `/backup {conf.action} {conf.backup_id}` "
            "again if it is still needed."
        )
    return f":grey_question: This confirmation is {escape(conf.state.value)}. Nothing was done."


def approval_unavailable_text(error: ApprovalUnavailable) -> str:
    request = error.request
    if request is None:
        return ":grey_question: I don't know this approval request. Nothing was done."
    what = f"The request to {request.action} backup *#{request.backup_id}*"
    if error.expired or request.state is ApprovalState.EXPIRED:
        return f":alarm_clock: {what} has expired, so nothing was done. It can be asked for again."
    by = f" by <@{request.decided_by}>" if request.decided_by else ""
    if request.state in (ApprovalState.APPROVED, ApprovalState.DONE, ApprovalState.FAILED):
        return f":ballot_box_with_check: {what} was already approved{by}. Nothing more was done."
    return f":ballot_box_with_check: {what} was already {request.state.value}{by}. Nothing more was done."


def mismatch_text(conf: Confirmation) -> str:
    return f"That is not this server. Type {conf.target_server_name} or {conf.target_server_id} exactly."


def interrupted_message() -> Message:
    """For work cut short because the bot had to stop before it finished."""
    return simple(
        ":warning: The bot had to stop before your request finished. If you were changing something, "
        "it may still have happened: check `/backup list` before trying again."
    )
