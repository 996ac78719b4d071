"""The use cases: one menu (`Operations`) of everything a person, the CLI or the background loop may do.

    errors.py         OpsError and its refusals, the tree drawn in its docstring
    core.py           Actor, ReplyTo, authorize, the channel rule, the audit: what every family stands on
    backups.py        list, servers, the audit log, create
    confirmations.py  delete and restore, asked for and confirmed
    undo.py           the undo window for deletes
    chains.py         the safety backup before a restore
    room.py           room at the 10-backup limit
    approvals.py      the two-person rule
    home.py           the Home tab
    admin.py          grants, admins, channels, languages
    policies.py       backup policies: schedules, runs, retention inside the 10-backup limit, pins
    pipelines.py      pipeline tokens, and the backups pipelines (and the shell) ask for
    watching.py       freshness, alerts that heal themselves, status, digests
    writes.py         the one way to send a write: its record, its outcome (done, not done, unknown)

Each family is a mixin on `Core`; `Operations` joins them, so a use case may call another family's.
No module here imports Slack, and none imports this package's face.
"""

from __future__ import annotations

from bot.ops.admin import Admin
from bot.ops.approvals import Approvals, Awaiting, Decision
from bot.ops.backups import Backups, Listing, ServerAccess
from bot.ops.chains import Chains, ChainStarted, ChainStep
from bot.ops.confirmations import Confirmations, Done
from bot.ops.core import APPROVAL_TTL, CONFIRMATION_TTL, Accepted, Actor, ReplyTo
from bot.ops.errors import (
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
from bot.ops.home import Home, HomeView, ServerSummary
from bot.ops.pipelines import Pipelines, RunReporter, RunStarted
from bot.ops.policies import Policies, PolicyChange, PolicyNews, PolicyView, SlotBudget
from bot.ops.room import PURPOSE_MAKE_ROOM, Room, RoomMade
from bot.ops.undo import DeleteSent, InUndoWindow, Undo
from bot.ops.watching import AlertChange, DigestReport, Freshness, ServerStatus, Watching
from bot.ops.writes import Sent, Write, WriteKind, WriteOutcome

__all__ = [
    "APPROVAL_TTL",
    "CONFIRMATION_TTL",
    "PURPOSE_MAKE_ROOM",
    "Accepted",
    "Actor",
    "AlertChange",
    "ApprovalUnavailable",
    "Awaiting",
    "BackupNotFound",
    "BadSchedule",
    "ChainStarted",
    "ChainStep",
    "ChannelUnusable",
    "ConfirmationMismatch",
    "ConfirmationUnavailable",
    "Decision",
    "DeleteSent",
    "DigestReport",
    "Done",
    "Freshness",
    "HomeView",
    "InUndoWindow",
    "Interrupted",
    "KeepTooMany",
    "KeyReused",
    "Listing",
    "LowerKeepInSlack",
    "MayHaveHappened",
    "NoPolicy",
    "NoRoom",
    "NotPinnable",
    "NotRestorable",
    "NotTheRequester",
    "Operations",
    "OpsError",
    "OwnRequest",
    "PermissionDenied",
    "Pipelines",
    "Policies",
    "PolicyChange",
    "PolicyNews",
    "PolicyView",
    "ReplyTo",
    "RoomMade",
    "RuledServer",
    "RunReporter",
    "RunStarted",
    "SafetyBackupFailed",
    "Sent",
    "ServerAccess",
    "ServerStatus",
    "ServerSummary",
    "SlotBudget",
    "TokenNameTaken",
    "TokenRefused",
    "UndoUnavailable",
    "Write",
    "WriteKind",
    "WriteOutcome",
    "WrongChannel",
]


class Operations(Confirmations, Undo, Chains, Room, Approvals, Backups, Watching, Home, Admin, Pipelines, Policies):
    """Every use case: one object the listeners, the CLI and the background loop call."""
