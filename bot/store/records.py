"""Rows as frozen dataclasses, with the enums of their states.

Each piece of work that outlives a request is a row with a state, moved from
one state to the next by one statement that names the old state (see the
queries): the dataclasses here are what those rows read as.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.policy import Role

OUTCOMES = ("done", "denied", "failed", "cancelled")


@dataclass(frozen=True)
class Grant:
    user_id: str
    server_id: int
    role: Role
    granted_by: str
    granted_at: str


@dataclass(frozen=True)
class Standing:
    """A person's standing, read in one query: admin in the store, their role on one server (if one was named),
    the language they chose (if any)."""

    user_id: str
    server_id: int | None
    is_admin: bool
    role: Role | None
    language: str | None


@dataclass(frozen=True)
class DueWork:
    """What the background loop has to do (Store.due_work): the probes with work now, and how many seconds (by the
    store's clock) until the earliest work known that is not due yet, if any."""

    now: frozenset[str]
    next_in: float | None = None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    user_id: str
    action: str
    server_id: int | None
    backup_id: int | None
    outcome: str
    detail: str
    source: str

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()

    @property
    def detail_line(self) -> str:
        return one_line(self.detail)


@dataclass(frozen=True)
class AuditSearch:
    """Filters on the audit log; None means any."""

    server_id: int | None = None
    user_id: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: str | None = None  # an ISO date or time, UTC

    def sql(self) -> tuple[str, list[Any]]:
        clauses, args = [], []
        for column in ("server_id", "user_id", "action", "outcome"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if self.since is not None:
            clauses.append("at >= ?")
            args.append(self.since)
        return ("WHERE " + " AND ".join(clauses) if clauses else ""), args

    def words(self) -> str:
        parts = [f"{k} {v}" for k, v in self.__dict__.items() if v is not None]
        return ", ".join(parts)


LINE_BREAKS = re.compile(r"\r\n|[\r\n\v\f\x85\u2028\u2029]")
CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def one_line(text: str) -> str:
    """Text from people as one line: a line break shows as ⏎, other control characters as �.

    An audit entry must render as one line, or a description could forge another entry.
    """
    return CONTROL.sub("\ufffd", LINE_BREAKS.sub("⏎", text))


@dataclass(frozen=True)
class Followed:
    backup_id: int
    server_id: int
    requested_by: str
    channel_id: str | None
    response_url: str | None
    description: str
    started_at: datetime
    state: str

    @classmethod
    def from_row(cls, r: dict) -> Followed:
        return cls(
            r["backup_id"],
            r["server_id"],
            r["requested_by"],
            r["channel_id"],
            r["response_url"],
            r["description"] or "",
            datetime.fromisoformat(r["started_at"]),
            r["state"],
        )


class ConfirmationState(StrEnum):
    PENDING = "pending"
    USED = "used"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    GONE = "gone"
    UNRESTORABLE = "unrestorable"
    FAILED = "failed"


@dataclass(frozen=True)
class Confirmation:
    id: str
    action: str
    backup_id: int
    server_id: int
    server_name: str
    target_server_id: int
    target_server_name: str
    backup_created_at: str
    backup_type: str
    requested_by: str
    created_at: datetime
    state: ConfirmationState
    used_by: str | None
    used_at: str | None
    backup_description: str = ""
    newer_count: int = 0
    newest_id: int | None = None
    newest_at: str | None = None
    target_manual_count: int | None = None
    safety: bool = True  # the restore form's safety-backup box starts ticked
    purpose: str | None = None  # "make_room": delete the oldest manual backup, then create
    description: str = ""  # the backup to create once room is made


@dataclass(frozen=True)
class Announcement:
    """One message in the outbox, kept until Slack accepts it: a post (`kind` post), an update of a posted
    card in place (`update`, at `ts`), or a person's Home tab to publish again (`home`, for `user_id`).

    An approval card is a post too; once posted, its channel and ts are kept on the request (`approval_id`).
    """

    id: int | None
    channel: str
    message: dict
    attempts: int
    approval_id: str | None = None
    kind: str = "post"
    ts: str | None = None
    user_id: str | None = None
    alert_id: str | None = None  # an alert's card: once posted, its channel and ts are kept (`alert_cards`)


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # claimed by one approver; the write is being sent
    DONE = "done"
    FAILED = "failed"  # approved, but the write was not done (refused by the API, or never sent)
    UNKNOWN = "unknown"  # approved and sent, but the API did not confirm it: it may have happened
    DENIED = "denied"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


@dataclass(frozen=True)
class ApprovalRequest:
    """A confirmed delete or restore waiting for a second person (the two-person rule)."""

    id: str
    action: str
    backup_id: int
    server_id: int
    server_name: str
    target_server_id: int
    target_server_name: str
    backup_created_at: str
    backup_type: str
    backup_description: str
    requested_by: str
    reason: str
    origin_channel: str | None
    response_url: str | None
    card_channel: str | None
    card_ts: str | None
    created_at: str
    expires_at: float
    state: ApprovalState
    decided_by: str | None
    decided_at: str | None
    detail: str | None

    safety: bool = False
    payload: str | None = None  # JSON: what a policy request asks (its keep before and after)

    @property
    def servers(self) -> set[int]:
        return {self.server_id, self.target_server_id}


class WindowState(StrEnum):
    WAITING = "waiting"  # in its undo window
    SENDING = "sending"  # claimed: the DELETE is going out
    DONE = "done"
    GONE = "gone"  # the backup was already gone when the window ended
    FAILED = "failed"  # the DELETE was not done (refused by the API, or never sent)
    UNKNOWN = "unknown"  # the DELETE was sent but not confirmed: it may have happened
    UNDONE = "undone"


@dataclass(frozen=True)
class DeleteWindow:
    """A confirmed delete waiting out its undo window; sent once when `due_at` (epoch seconds) comes."""

    id: str
    backup_id: int
    server_id: int
    server_name: str
    backup_type: str
    requested_by: str
    approved_by: str | None
    channel_id: str | None
    response_url: str | None
    due_at: float
    state: WindowState
    created_at: str
    decided_by: str | None = None
    detail: str | None = None


class ChainState(StrEnum):
    CREATING = "creating"  # the safety backup is being asked for
    WAITING = "waiting"  # the safety backup is running
    RESTORING = "restoring"  # claimed: the restore is going out
    DONE = "done"
    FAILED = "failed"  # nothing was restored
    UNKNOWN = "unknown"  # the restore was sent but not confirmed: it may have started
    INTERRUPTED = "interrupted"  # the bot stopped mid-step; nothing is re-sent


@dataclass(frozen=True)
class RestoreChain:
    """A restore that waits for its safety backup to complete; the restore is sent once, after it."""

    id: str
    backup_id: int
    server_id: int
    server_name: str
    target_server_id: int
    target_server_name: str
    requested_by: str
    approved_by: str | None
    channel_id: str | None
    response_url: str | None
    safety_backup_id: int | None
    state: ChainState
    created_at: str
    updated_at: float
    detail: str | None = None
    request_id: str | None = None  # the approval request that started it, if one did


class WriteState(StrEnum):
    SENDING = "sending"  # recorded before the request goes out
    SETTLING = "settling"  # its bot died while sending; claimed by the one bot that looks
    DONE = "done"
    NOT_DONE = "not_done"  # refused by the API (4xx), or never reached it
    UNKNOWN = "unknown"  # the API may have acted: no answer in time, a 5xx, the bot stopped


@dataclass(frozen=True)
class WriteRecord:
    """One write to the backup API, recorded before it was sent (bot/ops/writes.py)."""

    id: str
    kind: str  # create, delete, restore
    path: str  # what sent it: direct, undo, chain, approval, room, ...
    ref: str | None  # the row of the work that sent it (a delete window, a chain, a request)
    server_id: int
    backup_id: int | None
    description: str
    actor: str
    source: str
    channel_id: str | None
    response_url: str | None
    state: WriteState
    detail: str
    created_backup_id: int | None
    created_at: str
    updated_at: float

    @classmethod
    def from_row(cls, row: dict) -> WriteRecord:
        row = {**row, "state": WriteState(row["state"]), "description": row.get("description") or ""}
        row["detail"] = row.get("detail") or ""
        return cls(**row)


class AlertKind(StrEnum):
    STALE = "stale"  # the server's newest completed backup is older than its threshold (or there is none)
    FAILED = "failed"  # a backup ended in any state but completed
    STUCK = "stuck"  # a backup has been in progress longer than 6 hours
    RUN_FAILED = "run_failed"  # a policy's backup did not complete
    RUN_SKIPPED = "run_skipped"  # a policy's run found no room (10 manual backups)
    RUN_MISSED = "run_missed"  # a policy's slots passed while the bot was down


@dataclass(frozen=True)
class Alert:
    """Something about a server the team must hear of, open until it heals (then its card is edited).

    `facts` and `recovery` are what the cards show (JSON objects: the newest backup and its age, the
    backup that failed, the backup that healed it).
    """

    id: str
    server_id: int
    kind: AlertKind
    subject_id: int | None
    state: str  # open, recovered
    facts: dict
    opened_at: float
    reminded_at: float | None
    recovered_at: float | None
    recovery: dict

    @property
    def open(self) -> bool:
        return self.state == "open"

    @classmethod
    def from_row(cls, row: dict) -> Alert:
        return cls(
            row["id"],
            row["server_id"],
            AlertKind(row["kind"]),
            row["subject_id"],
            row["state"],
            json.loads(row["facts"] or "{}"),
            row["opened_at"],
            row["reminded_at"],
            row["recovered_at"],
            json.loads(row["recovery"] or "{}"),
        )


@dataclass(frozen=True)
class Digest:
    """A channel's periodic summary: when it is due (a schedule), and the last slot it was sent for."""

    channel: str
    cadence: str  # daily, weekly
    days: tuple[int, ...]
    at_time: str  # HH:MM, local
    zone: str
    set_by: str
    set_at: float
    last_slot: float | None

    @classmethod
    def from_row(cls, row: dict) -> Digest:
        days = tuple(int(d) for d in (row["days"] or "").split(",") if d)
        return cls(
            row["channel"],
            row["cadence"],
            days,
            row["at_time"],
            row["zone"],
            row["set_by"],
            row["set_at"],
            row["last_slot"],
        )


@dataclass(frozen=True)
class Policy:
    """A server's backup policy: its schedule (in a zone), its retention, whether it runs (`state`)."""

    server_id: int
    cadence: str  # daily, weekly, hourly
    days: tuple[int, ...]
    at_time: str  # HH:MM, local (hourly: the first `from`)
    every_hours: int
    zone: str
    keep_last: int
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    state: str  # active, paused, off
    paused_until: float | None
    pause_reason: str
    set_by: str
    set_at: float
    changed_by: str
    changed_at: float
    last_slot: float | None

    @classmethod
    def from_row(cls, row: dict) -> Policy:
        row = dict(row)
        row["days"] = tuple(int(d) for d in (row.get("days") or "").split(",") if d)
        row["pause_reason"] = row.get("pause_reason") or ""
        for name in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly"):
            row[name] = row.get(name) or 0
        row["every_hours"] = row.get("every_hours") or 24
        return cls(**row)


@dataclass(frozen=True)
class PolicyRun:
    """One run of a policy, unique per server and slot: claimed, creating, running, then how it ended."""

    id: str
    server_id: int
    slot: float
    kind: str  # scheduled, now (`policy SERVER run`)
    state: str  # creating, running, completed, failed, skipped, missed, unknown
    backup_id: int | None
    claimed_until: float | None
    started_at: float | None
    finished_at: float | None
    detail: str
    pruned: tuple[int, ...]

    @property
    def tag(self) -> str:
        """What its backup's description ends with, so a bot can find it by listing."""
        return f"[policy r{self.id}]"

    @classmethod
    def from_row(cls, row: dict) -> PolicyRun:
        row = dict(row)
        row["detail"] = row.get("detail") or ""
        row["pruned"] = tuple(json.loads(row.get("pruned") or "[]"))
        return cls(**row)


def confirmation_from_row(row: dict) -> Confirmation:
    row = dict(row)
    row["created_at"] = datetime.fromisoformat(row["created_at"])
    row["state"] = ConfirmationState(row["state"])
    row["safety"] = row.get("safety") is None or bool(row["safety"])
    row["newer_count"] = row.get("newer_count") or 0
    row["backup_description"] = row.get("backup_description") or ""
    row["description"] = row.get("description") or ""
    return Confirmation(**row)


def window_from_row(row: dict) -> DeleteWindow:
    row = dict(row)
    row.pop("claimed_until", None)
    row["state"] = WindowState(row["state"])
    return DeleteWindow(**row)


def chain_from_row(row: dict) -> RestoreChain:
    row = dict(row)
    row["state"] = ChainState(row["state"])
    return RestoreChain(**row)


def approval_from_row(row: dict) -> ApprovalRequest:
    row = dict(row)
    row["state"] = ApprovalState(row["state"])
    row["backup_description"] = row.get("backup_description") or ""
    row["reason"] = row.get("reason") or ""
    row["safety"] = bool(row.get("safety"))
    row.pop("card_message", None)
    return ApprovalRequest(**row)


@dataclass(frozen=True)
class PipelineToken:
    """A pipeline's token (bot/ops/pipelines.py): its name, the servers it reaches, and whether it was revoked.

    The token itself is never kept: `selector` finds the row, and `hash` (sha256 of the whole token) proves it.
    """

    name: str
    selector: str
    hash: str
    servers: frozenset[int]
    made_by: str
    made_at: str
    revoked_by: str | None = None
    revoked_at: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @classmethod
    def from_row(cls, row: dict) -> PipelineToken:
        row = dict(row)
        row["servers"] = frozenset(int(s) for s in (row.get("servers") or "").split(",") if s)
        return cls(**row)


class RunStatus(StrEnum):
    PENDING = "pending"  # claimed; the create is on its way (no answer from the API yet)
    IN_PROGRESS = "in_progress"  # the API created the backup; it is being followed
    COMPLETED = "completed"
    FAILED = "failed"  # no backup was created (refused, or never sent), or it ended in any state but completed
    UNKNOWN = "unknown"  # the API did not confirm the create: it may have happened

    @property
    def final(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.FAILED)


@dataclass(frozen=True)
class PipelineRun:
    """One backup asked for by a pipeline (or the `backup` command): a row, like a policy's run.

    While it is in progress, how it ends is read from the followed backup (`followed`), which the follower
    moves on: the run's own status is the create's outcome, or what a shell that waited on it saw.
    """

    id: str
    actor: str
    server_id: int
    server_name: str | None
    idempotency_key: str | None
    request_hash: str
    description: str
    status: RunStatus
    backup_id: int | None
    refusal: str | None  # no_room, api: the create was refused (not done)
    detail: str
    oldest: dict | None  # the oldest manual backup (id, created_at, description), when there was no room
    created_at: str
    updated_at: float
    finished_at: str | None

    @classmethod
    def from_row(cls, row: dict) -> PipelineRun:
        row = dict(row)
        follow_state, final = row.pop("follow_state", None), row.pop("final_status", None)
        followed_until = row.pop("follow_finished_at", None)
        row["status"] = RunStatus(row["status"])
        row["description"] = row.get("description") or ""
        row["detail"] = row.get("detail") or ""
        row["oldest"] = json.loads(row["oldest"]) if row.get("oldest") else None
        if row["status"] is RunStatus.IN_PROGRESS and follow_state == "finished":
            row["finished_at"] = followed_until
            if final == "completed":
                row["status"] = RunStatus.COMPLETED
            elif final == "gave_up":
                row["status"], row["detail"] = RunStatus.UNKNOWN, "the bot stopped following it after 6 hours"
            else:
                row["status"] = RunStatus.FAILED
                row["detail"] = (
                    f"backup #{row['backup_id']} ended {final}"
                    if final != "vanished"
                    else (f"backup #{row['backup_id']} is no longer in the backup API's list")
                )
        return cls(**row)
