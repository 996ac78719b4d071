"""The use cases' refusals: each a reason a person can read, put into words once at each edge.

    OpsError                  a refusal (bot/slack/views/errors.py and the CLI put it into words)
     ├── PermissionDenied        the person lacks the role (or admin) this needs
     ├── WrongChannel            the server is run only from its own channels
     ├── ChannelUnusable         the bot could not post in a channel: the server not bound there (no digest set)
     ├── BadSchedule             a threshold or schedule out of bounds
     ├── BackupNotFound          no such backup, or it is gone (also: no role on its server)
     ├── NotRestorable           the backup is not completed
     ├── ConfirmationUnavailable the confirmation was used, cancelled, expired, or never existed
     ├── ConfirmationMismatch    the typed server name is not the target's
     ├── ApprovalUnavailable     the request was decided, withdrawn, expired, or never existed
     ├── OwnRequest              nobody decides on their own request
     ├── NotTheRequester         only the requester withdraws
     ├── NoRoom                  the server keeps the most manual backups the provider allows
     ├── RuledServer             making room in one step is not for a server under the two-person rule
     ├── SafetyBackupFailed      the restore was not sent: its safety backup could not be made
     ├── UndoUnavailable         the delete was already sent, undone, or is unknown
     ├── Interrupted             a write was on its way when its bot stopped: it may have happened
     ├── MayHaveHappened         a write the API did not confirm: it may have happened (bot/ops/writes.py)
     ├── TokenRefused            a pipeline's token is unknown or revoked, or does not reach the server
     ├── TokenNameTaken          a pipeline token of that name exists (or existed: names are never reused)
     ├── KeyReused               an Idempotency-Key already used for another request
     ├── KeepTooMany             a policy's keep does not fit the server's 10 manual slots (with the arithmetic)
     ├── NoPolicy                the server has no policy, or it is off (to pause, resume, run, turn off, keep)
     ├── LowerKeepInSlack        a lower keep under the two-person rule, asked for from the shell
     └── NotPinnable             only a manual backup is pinned (automatic ones come and go by themselves)

The API client's own errors (bot/backup_api.py) pass through the use cases unchanged.
tests/test_i18n.py fails for a subclass without words of its own in every language.
"""

from __future__ import annotations

from bot.backup_api import Backup
from bot.i18n import Words
from bot.policy import Action, Role
from bot.retention import Keep
from bot.store import ApprovalRequest, Confirmation, DeleteWindow, RestoreChain


class OpsError(Exception):
    """A refusal with a reason a person can read."""


class PermissionDenied(OpsError):
    def __init__(self, action: Action, server_id: int | None, needed: str, role: Role | None = None):
        self.action, self.server_id, self.needed, self.role = action, server_id, needed, role
        where = f" on server {server_id}" if server_id is not None else ""
        super().__init__(f"{action.value}{where} needs the {needed} role")


class WrongChannel(OpsError):
    """The server is bound to channels, and this was asked from none of them."""

    def __init__(self, server_id: int, channels: list[str]):
        self.server_id, self.channels = server_id, channels
        super().__init__(f"server {server_id} is run only from its channels")


class BackupNotFound(OpsError):
    def __init__(self, backup_id: int, *, gone: bool = False):
        self.backup_id, self.gone = backup_id, gone
        super().__init__(f"backup {backup_id} {'no longer exists' if gone else 'does not exist'}")


class NotRestorable(OpsError):
    def __init__(self, backup: Backup):
        self.backup = backup
        super().__init__(f"backup {backup.id} is {backup.status}; only a completed backup can be restored")


class ConfirmationUnavailable(OpsError):
    """The confirmation was already used, cancelled, expired, or never existed."""

    def __init__(self, confirmation: Confirmation | None):
        self.confirmation = confirmation
        state = confirmation.state.value if confirmation else "missing"
        super().__init__(f"this confirmation is {state}")


class ConfirmationMismatch(OpsError):
    def __init__(self, confirmation: Confirmation, typed: str):
        self.confirmation, self.typed = confirmation, typed
        super().__init__(
            f"{typed!r} is neither {confirmation.target_server_name!r} nor {confirmation.target_server_id}"
        )


class ApprovalUnavailable(OpsError):
    """The request was already decided, withdrawn, expired, or never existed."""

    def __init__(self, request: ApprovalRequest | None, *, expired: bool = False):
        self.request, self.expired = request, expired
        state = "expired" if expired else (request.state.value if request else "missing")
        super().__init__(f"this approval request is {state}")


class ChannelUnusable(OpsError):
    """The bot could not post in the channel (`why`), so the server was not bound to it (`server_id`), or,
    without a server, no digest was set there."""

    def __init__(self, server_id: int | None, channel_id: str, why: Words):
        self.server_id, self.channel_id, self.why = server_id, channel_id, why
        what = f"server {server_id} was not bound to {channel_id}" if server_id else f"no digest set in {channel_id}"
        super().__init__(f"{what}: {why.english()}")


class BadSchedule(OpsError):
    """A value a schedule or threshold cannot take (`what`: stale, ...): nothing was changed."""

    def __init__(self, what: str, value: str):
        self.what, self.value = what, value
        bounds = ": a pause ends in the future, at most 7 days from now" if what == "pause" else ""
        super().__init__(f"{what} {value} is out of bounds{bounds}")


class OwnRequest(OpsError):
    """Nobody decides on their own request, admins included."""

    def __init__(self, request: ApprovalRequest):
        self.request = request
        super().__init__("the requester may not approve or deny their own request")


class NotTheRequester(OpsError):
    def __init__(self, request: ApprovalRequest):
        self.request = request
        super().__init__("only the requester may withdraw a request")


class NoRoom(OpsError):
    """A create refused because the server already keeps the most manual backups the provider allows."""

    def __init__(
        self,
        server_id: int,
        count: int,
        oldest: Backup | None,
        *,
        description: str,
        may_make_room: bool,
        ruled: bool,
        provider_message: str,
    ):
        self.server_id, self.count, self.oldest = server_id, count, oldest
        self.description, self.may_make_room, self.ruled = description, may_make_room, ruled
        self.provider_message = provider_message
        super().__init__(f"server {server_id} already has {count} manual backups")


class RuledServer(OpsError):
    """Making room is one confirmed step; on a server under the two-person rule a delete needs approval."""

    def __init__(self, server_id: int):
        self.server_id = server_id
        super().__init__(f"server {server_id} is under the two-person rule")


class SafetyBackupFailed(OpsError):
    """The safety backup could not be made, so the restore was not sent."""

    def __init__(self, chain: RestoreChain, why: Words, *, no_room: bool = False):
        self.chain, self.why, self.no_room = chain, why, no_room
        super().__init__(f"the restore was not sent: {why.english()}")


class UndoUnavailable(OpsError):
    """The delete was already sent, undone, or the button is unknown."""

    def __init__(self, window: DeleteWindow | None):
        self.window = window
        super().__init__(f"this delete is {window.state.value if window else 'unknown'}")


class MayHaveHappened(OpsError):
    """A write sent but not confirmed (no answer in time, a 5xx, ...): it may have happened. `sent` says which."""

    def __init__(self, sent):
        self.sent = sent
        write = sent.write
        what = f"{write.kind.value} of backup {write.backup_id}" if write.backup_id else f"{write.kind.value}"
        super().__init__(f"the {what} on server {write.server_id} may have happened: {sent.why.english()}")


class Interrupted(OpsError):
    """A write was on its way when its bot stopped: it may have happened, and it is not sent again."""

    def __init__(self, why: Words):
        self.why = why
        super().__init__(why.english())


class TokenRefused(OpsError):
    """A pipeline's token was refused: unknown, revoked (`revoked`), or not made for this server (`server_id`)."""

    def __init__(self, name: str | None, *, revoked: bool = False, server_id: int | None = None):
        self.name, self.revoked, self.server_id = name, revoked, server_id
        if server_id is not None:
            why = f"token {name} does not reach server {server_id}"
        elif revoked:
            why = f"token {name} was revoked"
        else:
            why = "the token is not known"
        super().__init__(why)

    @property
    def forbidden(self) -> bool:
        """A good token asking for a server it was not made for (403), rather than no good token (401)."""
        return self.server_id is not None


class TokenNameTaken(OpsError):
    """Token names are never reused, so the audit's `token:NAME` always means one token."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"a token named {name} exists already (revoked tokens keep their names)")


class KeyReused(OpsError):
    """The same Idempotency-Key came with another request: it names one request only."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        super().__init__(f"this Idempotency-Key was used for another request (run {run_id})")


class KeepTooMany(OpsError):
    """A policy's keep exceeds 10 - reserved - the server's other manual backups - 1: nothing was changed."""

    def __init__(self, server_id: int, keep: Keep, fits: int, reserved: int, other: int):
        self.server_id, self.keep, self.fits = server_id, keep, fits
        self.reserved, self.other = reserved, other
        super().__init__(f"{keep.words()} keeps {keep.most}, but server {server_id} has room for {fits}")


class NoPolicy(OpsError):
    """The server has no policy (or it is off): say a schedule first (`policy SERVER daily 02:00`)."""

    def __init__(self, server_id: int, *, off: bool = False):
        self.server_id, self.off = server_id, off
        what = "its policy is off" if off else "it has no policy"
        super().__init__(f"server {server_id}: {what}; set a schedule first (policy {server_id} daily 02:00)")


class LowerKeepInSlack(OpsError):
    """A lower keep on a server under the two-person rule is asked for in Slack, where a second person
    approves it: the shell cannot post its card."""

    def __init__(self, server_id: int):
        self.server_id = server_id
        super().__init__(
            f"server {server_id} is under the two-person rule: ask for a lower keep in Slack "
            "(/backup policy), where a second owner approves it; nothing was changed"
        )


class NotPinnable(OpsError):
    """Pins are for manual backups: automatic ones come and go by the provider's own rule."""

    def __init__(self, backup: Backup):
        self.backup = backup
        super().__init__(f"backup {backup.id} is {backup.backup_type}, not manual")
