"""The bot's SQLite store, through sqlite-utils.

Tables: grants, admins, audit, servers (names learned from API answers),
followed (backups the bot follows to completion), confirmations (pending
deletes and restores, consumed at most once), outbox (announcements kept
until Slack accepts them), noticed and seen (things reported or handled
once), approval_requests (the two-person rule), delete_windows (confirmed
deletes in their undo window) and restore_chains (restores waiting on their
safety backup). On open, a new file is given the current schema in one
transaction and an older one is migrated step by step; WAL mode lets `serve`
and the CLI share a file.

Two connections, each behind its own lock: one for writes, one for reads.
A write waiting on a file another process has locked therefore never holds
up a read, and WAL lets reads go on while another process writes.
SQLite's errors are translated here, once, into `StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.clock import iso_seconds, utc_now
from bot.policy import Role

SCHEMA_VERSION = 8
OUTCOMES = ("done", "denied", "failed", "cancelled")
SOURCES = ("slack", "cli")
DEFAULT_BUSY_SECONDS = 0.5


class StoreError(Exception):
    """The store cannot be used; the message names BACKUPBOT_DB where that helps, and is safe to print."""


class StoreUnavailable(StoreError):
    """A read or write failed: the file is locked by another process, read-only, or damaged."""


class ConfirmationState(StrEnum):
    PENDING = "pending"
    USED = "used"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    GONE = "gone"
    UNRESTORABLE = "unrestorable"
    FAILED = "failed"


@dataclass(frozen=True)
class Grant:
    user_id: str
    server_id: int
    role: Role
    granted_by: str
    granted_at: str


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
    """One announcement in the outbox: kept until Slack accepts it.

    An approval card is one too; once posted, its channel and ts are kept on the request (`approval_id`).
    """

    id: int | None
    channel: str
    message: dict
    attempts: int
    approval_id: str | None = None


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # claimed by one approver; the write is being sent
    DONE = "done"
    FAILED = "failed"
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

    @property
    def servers(self) -> set[int]:
        return {self.server_id, self.target_server_id}


class WindowState(StrEnum):
    WAITING = "waiting"  # in its undo window
    SENDING = "sending"  # claimed: the DELETE is going out
    DONE = "done"
    GONE = "gone"  # the backup was already gone when the window ended
    FAILED = "failed"
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
    FAILED = "failed"
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


def open_store(location: str, *, clock=utc_now) -> Store:
    """The store BACKUPBOT_DB names: a PostgreSQL URL (shared by several bots), else a SQLite file."""
    if location.startswith(("postgresql://", "postgres://")):
        from bot.pg import PgStore  # only a PostgreSQL store needs psycopg loaded

        return PgStore(location, clock=clock)
    return Store(location, clock=clock)


def open_problem(path: str, exc: Exception) -> str:
    """One line on why the store at `path` cannot be opened."""
    parent = Path(path).expanduser().parent
    if not parent.is_dir():
        return f"BACKUPBOT_DB={path}: the directory {parent} does not exist"
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
        return f"BACKUPBOT_DB={path}: the file is not an SQLite database"
    return f"BACKUPBOT_DB={path}: cannot open the store ({exc})"


@functools.cache
def current_schema() -> tuple[str, ...]:
    """The SQL of every table and index a fully migrated store has, in the order they were made."""
    db = sqlite_utils.Database(memory=True)
    migrate_in_steps(db)
    rows = db.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid").fetchall()
    db.close()
    return tuple(sql for (sql,) in rows)


def migrate_in_steps(db: sqlite_utils.Database) -> None:
    """Every migration, each idempotent: what a file at any older version needs to reach SCHEMA_VERSION."""
    db["grants"].create(
        {"user_id": str, "server_id": int, "role": str, "granted_by": str, "granted_at": str},
        pk=("user_id", "server_id"),
        if_not_exists=True,
    )
    db["admins"].create({"user_id": str, "added_by": str, "added_at": str}, pk="user_id", if_not_exists=True)
    db["audit"].create(
        {
            "id": int,
            "at": str,
            "user_id": str,
            "action": str,
            "server_id": int,
            "backup_id": int,
            "outcome": str,
            "detail": str,
            "source": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db["servers"].create({"id": int, "name": str, "seen_at": str}, pk="id", if_not_exists=True)
    db["followed"].create(
        {
            "backup_id": int,
            "server_id": int,
            "requested_by": str,
            "channel_id": str,
            "response_url": str,
            "description": str,
            "started_at": str,
            "state": str,
            "final_status": str,
            "finished_at": str,
        },
        pk="backup_id",
        if_not_exists=True,
    )
    db["confirmations"].create(
        {
            "id": str,
            "action": str,
            "backup_id": int,
            "server_id": int,
            "server_name": str,
            "target_server_id": int,
            "target_server_name": str,
            "backup_created_at": str,
            "backup_type": str,
            "requested_by": str,
            "created_at": str,
            "state": str,
            "used_by": str,
            "used_at": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db["noticed"].create({"backup_id": int, "noticed_at": str}, pk="backup_id", if_not_exists=True)
    db["outbox"].create(
        {
            "id": int,
            "channel": str,
            "message": str,
            "state": str,
            "attempts": int,
            "not_before": float,
            "claimed_until": float,
            "created_at": str,
            "sent_at": str,
            "error": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db["seen"].create({"key": str, "at": float}, pk="key", if_not_exists=True)
    if "approval_id" not in db["outbox"].columns_dict:
        db["outbox"].add_column("approval_id", str)
    db["approval_rules"].create({"server_id": int, "set_by": str, "set_at": str}, pk="server_id", if_not_exists=True)
    db["approval_requests"].create(
        {
            "id": str,
            "action": str,
            "backup_id": int,
            "server_id": int,
            "server_name": str,
            "target_server_id": int,
            "target_server_name": str,
            "backup_created_at": str,
            "backup_type": str,
            "backup_description": str,
            "requested_by": str,
            "reason": str,
            "origin_channel": str,
            "response_url": str,
            "card_channel": str,
            "card_ts": str,
            "created_at": str,
            "expires_at": float,
            "state": str,
            "decided_by": str,
            "decided_at": str,
            "detail": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db["approval_requests"].create_index(["state", "expires_at"], if_not_exists=True)
    db["audit"].create_index(["at"], if_not_exists=True)
    db["audit"].create_index(["user_id", "id"], if_not_exists=True)
    db["audit"].create_index(["server_id", "id"], if_not_exists=True)
    db["audit"].create_index(["action", "id"], if_not_exists=True)
    db["audit"].create_index(["outcome", "id"], if_not_exists=True)
    db["home_opened"].create({"user_id": str, "at": str}, pk="user_id", if_not_exists=True)
    db["server_channels"].create(
        {"server_id": int, "channel_id": str, "added_by": str, "added_at": str},
        pk=("server_id", "channel_id"),
        if_not_exists=True,
    )
    db["followed"].create_index(["state"], if_not_exists=True)
    db["outbox"].create_index(["state", "not_before"], if_not_exists=True)
    _migrate_safety_nets(db)


def _migrate_safety_nets(db: sqlite_utils.Database) -> None:
    """Version 6: what a restore undoes, the safety backup, the undo window, room at the limit."""
    extra = {
        "confirmations": {
            "backup_description": str,
            "newer_count": int,
            "newest_id": int,
            "newest_at": str,
            "target_manual_count": int,
            "safety": int,
            "purpose": str,
            "description": str,
        },
        "approval_requests": {"safety": int},
    }
    for table, columns in extra.items():
        for name, kind in columns.items():
            if name not in db[table].columns_dict:
                db[table].add_column(name, kind)
    db["delete_windows"].create(
        {
            "id": str,
            "backup_id": int,
            "server_id": int,
            "server_name": str,
            "backup_type": str,
            "requested_by": str,
            "approved_by": str,
            "channel_id": str,
            "response_url": str,
            "due_at": float,
            "state": str,
            "claimed_until": float,
            "created_at": str,
            "decided_by": str,
            "detail": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db["delete_windows"].create_index(["state", "due_at"], if_not_exists=True)
    db["restore_chains"].create(
        {
            "id": str,
            "backup_id": int,
            "server_id": int,
            "server_name": str,
            "target_server_id": int,
            "target_server_name": str,
            "requested_by": str,
            "approved_by": str,
            "channel_id": str,
            "response_url": str,
            "safety_backup_id": int,
            "state": str,
            "created_at": str,
            "updated_at": float,
            "detail": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db["restore_chains"].create_index(["state", "updated_at"], if_not_exists=True)
    db["languages"].create({"user_id": str, "language": str, "set_at": str}, pk="user_id", if_not_exists=True)
    db["leases"].create({"name": str, "holder": str, "expires_at": float}, pk="name", if_not_exists=True)


class Store:
    def __init__(self, path: str, *, clock=utc_now, busy_seconds: float = DEFAULT_BUSY_SECONDS):
        self.path = path
        self._clock = clock
        self._write_lock = threading.RLock()
        self._read_lock = threading.RLock()
        try:
            self.db = sqlite_utils.Database(self._connect(busy_seconds))
            with self._write_lock:
                if path != ":memory:":
                    self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self._migrate()
            self._reader = self.db if path == ":memory:" else sqlite_utils.Database(self._connect(busy_seconds))
            if self._reader is self.db:
                self._read_lock = self._write_lock
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(open_problem(path, exc)) from exc

    def _connect(self, busy_seconds: float) -> sqlite3.Connection:
        return sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=busy_seconds)

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            if self._reader is not self.db:
                self._reader.conn.close()
            self.db.conn.close()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite_utils.Database]:
        with self._write_lock:
            try:
                yield self.db
            except sqlite3.DatabaseError as exc:
                self._abandon()
                if isinstance(exc, sqlite3.OperationalError):
                    raise StoreUnavailable(_words(exc)) from exc
                raise StoreUnavailable(f"the store is damaged ({exc})") from exc

    def _abandon(self) -> None:
        """Roll back a transaction a failed write left open: in WAL mode its stale snapshot would
        otherwise keep every later write on this connection failing as 'locked'."""
        if self.db.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.db.conn.execute("ROLLBACK")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite_utils.Database]:
        with self._read_lock:
            try:
                yield self._reader
            except sqlite3.DatabaseError as exc:
                raise StoreUnavailable(_words(exc)) from exc

    def table_rows(self, table: str) -> list[dict]:
        """Every row of one table, as it is stored (for copy-store); none if the table does not exist."""
        with self._reading() as db:
            return list(db[table].rows_where()) if table in db.table_names() else []

    def schema_version(self) -> int:
        with self._reading() as db:
            return db.execute("PRAGMA user_version").fetchone()[0]

    def check_writable(self) -> None:
        """Take the write lock for a moment and give it back; raises StoreUnavailable if that cannot be done."""
        with self._writing() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")

    # --- schema -----------------------------------------------------------

    def _migrate(self) -> None:
        """Bring the file to SCHEMA_VERSION in one transaction, which a second process opening it waits for.

        A new file is given the current schema at once (the SQL every migration leads to, worked out once
        per process on an in-memory database); an older file is migrated step by step, keeping its data.
        """
        db = self.db
        if db.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                if version == 0 and not db.table_names():
                    for statement in current_schema():
                        db.execute(statement)
                else:
                    migrate_in_steps(db)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise

    # --- grants and admins ------------------------------------------------

    def grant(self, user_id: str, server_id: int, role: Role, granted_by: str) -> None:
        with self._writing() as db:
            db["grants"].upsert(
                {
                    "user_id": user_id,
                    "server_id": server_id,
                    "role": role.label,
                    "granted_by": granted_by,
                    "granted_at": iso_seconds(self._clock()),
                },
                pk=("user_id", "server_id"),
            )

    def revoke(self, user_id: str, server_id: int) -> bool:
        with self._writing() as db:
            cursor = db.execute("DELETE FROM grants WHERE user_id = ? AND server_id = ?", [user_id, server_id])
            return cursor.rowcount > 0

    def role_of(self, user_id: str, server_id: int) -> Role | None:
        with self._reading() as db:
            row = db.execute(
                "SELECT role FROM grants WHERE user_id = ? AND server_id = ?", [user_id, server_id]
            ).fetchone()
        return Role.parse(row[0]) if row else None

    def grants(self, user_id: str | None = None) -> list[Grant]:
        where, args = ("user_id = ?", [user_id]) if user_id else (None, None)
        with self._reading() as db:
            rows = list(db["grants"].rows_where(where, args, order_by="user_id, server_id"))
        return [
            Grant(r["user_id"], r["server_id"], Role.parse(r["role"]), r["granted_by"], r["granted_at"]) for r in rows
        ]

    def add_admin(self, user_id: str, added_by: str) -> None:
        with self._writing() as db:
            db["admins"].upsert(
                {"user_id": user_id, "added_by": added_by, "added_at": iso_seconds(self._clock())}, pk="user_id"
            )

    def remove_admin(self, user_id: str) -> bool:
        with self._writing() as db:
            return db.execute("DELETE FROM admins WHERE user_id = ?", [user_id]).rowcount > 0

    def admins(self) -> set[str]:
        with self._reading() as db:
            return {row[0] for row in db.execute("SELECT user_id FROM admins")}

    def is_admin(self, user_id: str) -> bool:
        with self._reading() as db:
            return db.execute("SELECT 1 FROM admins WHERE user_id = ?", [user_id]).fetchone() is not None

    # --- audit ------------------------------------------------------------

    def audit(
        self,
        *,
        user_id: str,
        action: str,
        outcome: str,
        source: str,
        server_id: int | None = None,
        backup_id: int | None = None,
        detail: str = "",
        at: str | None = None,
    ) -> int:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
        with self._writing() as db:
            table = db["audit"].insert(
                {
                    "at": at or iso_seconds(self._clock()),
                    "user_id": user_id,
                    "action": action,
                    "server_id": server_id,
                    "backup_id": backup_id,
                    "outcome": outcome,
                    "detail": detail[:1000],
                    "source": source,
                }
            )
            return table.last_pk

    def audit_entries(self, limit: int = 20, search: AuditSearch | None = None) -> list[AuditEntry]:
        """The newest `limit` entries matching `search`, newest first (each filter has an index)."""
        where, args = (search or AuditSearch()).sql()
        with self._reading() as db:
            rows = db.execute(
                "SELECT id, at, user_id, action, server_id, backup_id, outcome, detail, source "
                f"FROM audit {where} ORDER BY id DESC LIMIT ?",
                [*args, limit],
            ).fetchall()
        return [AuditEntry(*row) for row in rows]

    def bind_channel(self, server_id: int, channel_id: str, added_by: str, *, bound: bool) -> bool:
        """Bind a server to a channel, or unbind it; True if that changed anything."""
        with self._writing() as db:
            if bound:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO server_channels (server_id, channel_id, added_by, added_at) VALUES (?,?,?,?)",
                    [server_id, channel_id, added_by, iso_seconds(self._clock())],
                )
            else:
                cursor = db.execute(
                    "DELETE FROM server_channels WHERE server_id = ? AND channel_id = ?", [server_id, channel_id]
                )
            return cursor.rowcount == 1

    def channels_of(self, server_id: int) -> list[str]:
        """The channels a server is run from and announced in (none: anywhere, as before)."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT channel_id FROM server_channels WHERE server_id = ? ORDER BY added_at, channel_id", [server_id]
            )
            return [row[0] for row in rows]

    def home_opened(self, user_id: str) -> None:
        """Remember that this person has looked at their Home tab (so it is worth refreshing)."""
        with self._writing() as db:
            db.execute(
                "INSERT INTO home_opened (user_id, at) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET at = excluded.at",
                [user_id, iso_seconds(self._clock())],
            )

    def has_opened_home(self, user_id: str) -> bool:
        with self._reading() as db:
            return db.execute("SELECT 1 FROM home_opened WHERE user_id = ?", [user_id]).fetchone() is not None

    def audit_entries_of(self, user_id: str, limit: int = 5) -> list[AuditEntry]:
        """A person's own newest `limit` entries, newest first."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT id, at, user_id, action, server_id, backup_id, outcome, detail, source "
                "FROM audit WHERE user_id = ? ORDER BY id DESC LIMIT ?",
                [user_id, limit],
            ).fetchall()
        return [AuditEntry(*row) for row in rows]

    # --- server names -----------------------------------------------------

    def learn_servers(self, servers: Iterable[tuple[int, str]]) -> None:
        unique = dict(servers)
        if not unique:
            return
        now = iso_seconds(self._clock())
        with self._writing() as db:
            db["servers"].upsert_all(
                [{"id": sid, "name": name, "seen_at": now} for sid, name in unique.items()], pk="id"
            )

    def server_names(self) -> dict[int, str]:
        with self._reading() as db:
            return {row[0]: row[1] for row in db.execute("SELECT id, name FROM servers")}

    # --- followed backups -------------------------------------------------

    def follow(
        self,
        *,
        backup_id: int,
        server_id: int,
        requested_by: str,
        channel_id: str | None,
        response_url: str | None,
        description: str = "",
        started_at: str | None = None,
    ) -> None:
        with self._writing() as db:
            db["followed"].insert(
                {
                    "backup_id": backup_id,
                    "server_id": server_id,
                    "requested_by": requested_by,
                    "channel_id": channel_id,
                    "response_url": response_url,
                    "description": description,
                    "started_at": started_at or iso_seconds(self._clock()),
                    "state": "following",
                },
                pk="backup_id",
                ignore=True,
            )

    def following(self) -> list[Followed]:
        with self._reading() as db:
            rows = list(db["followed"].rows_where("state = ?", ["following"], order_by="backup_id"))
        return [
            Followed(
                r["backup_id"],
                r["server_id"],
                r["requested_by"],
                r["channel_id"],
                r["response_url"],
                r["description"] or "",
                datetime.fromisoformat(r["started_at"]),
                r["state"],
            )
            for r in rows
        ]

    def finish_follow(self, backup_id: int, final_status: str) -> bool:
        """Mark a followed backup finished; True only for the one caller that did it."""
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE followed SET state = 'finished', final_status = ?, finished_at = ? "
                "WHERE backup_id = ? AND state = 'following'",
                [final_status, iso_seconds(self._clock()), backup_id],
            )
            return cursor.rowcount == 1

    def notice(self, backup_id: int) -> bool:
        """Remember a backup the bot has reported on its own; True only the first time."""
        with self._writing() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO noticed (backup_id, noticed_at) VALUES (?, ?)",
                [backup_id, iso_seconds(self._clock())],
            )
            return cursor.rowcount == 1

    def first_time(self, key: str) -> bool:
        """Remember `key` (a Socket Mode envelope, an event); True only the first time it is seen."""
        with self._writing() as db:
            cursor = db.execute("INSERT OR IGNORE INTO seen (key, at) VALUES (?, ?)", [key, time.time()])
            db.execute("DELETE FROM seen WHERE at < ?", [time.time() - 86400])
            return cursor.rowcount == 1

    # --- confirmations ----------------------------------------------------

    def create_confirmation(self, **fields: Any) -> Confirmation:
        token = secrets.token_urlsafe(12)
        row = {
            **fields,
            "id": token,
            "created_at": iso_seconds(self._clock()),
            "state": ConfirmationState.PENDING.value,
        }
        with self._writing() as db:
            db["confirmations"].insert(row)
        return self.confirmation(token)

    def confirmation(self, token: str) -> Confirmation | None:
        with self._reading() as db:
            rows = list(db["confirmations"].rows_where("id = ?", [token]))
        if not rows:
            return None
        row = rows[0]
        row["created_at"] = datetime.fromisoformat(row["created_at"])
        row["state"] = ConfirmationState(row["state"])
        row["safety"] = row.get("safety") is None or bool(row["safety"])
        row["newer_count"] = row.get("newer_count") or 0
        row["backup_description"] = row.get("backup_description") or ""
        row["description"] = row.get("description") or ""
        return Confirmation(**row)

    def _move(self, token: str, old: ConfirmationState, new: ConfirmationState, used_by: str | None = None) -> bool:
        """Move a confirmation from `old` to `new`; True only for the one caller that did it."""
        with self._writing() as db:
            if used_by is None:
                cursor = db.execute(
                    "UPDATE confirmations SET state = ? WHERE id = ? AND state = ?", [new.value, token, old.value]
                )
            else:
                cursor = db.execute(
                    "UPDATE confirmations SET state = ?, used_by = ?, used_at = ? WHERE id = ? AND state = ?",
                    [new.value, used_by, iso_seconds(self._clock()), token, old.value],
                )
            return cursor.rowcount == 1

    def use_confirmation(self, token: str, used_by: str) -> bool:
        """pending → used: the one press that may send the write."""
        return self._move(token, ConfirmationState.PENDING, ConfirmationState.USED, used_by)

    def cancel_confirmation(self, token: str, used_by: str) -> bool:
        """pending → cancelled."""
        return self._move(token, ConfirmationState.PENDING, ConfirmationState.CANCELLED, used_by)

    def expire_confirmation(self, token: str) -> bool:
        """pending → expired, once it outlived its time."""
        return self._move(token, ConfirmationState.PENDING, ConfirmationState.EXPIRED)

    def backup_gone_at_press(self, token: str, used_by: str) -> bool:
        """pending → gone: the backup no longer existed when the confirmation was pressed."""
        return self._move(token, ConfirmationState.PENDING, ConfirmationState.GONE, used_by)

    def backup_unrestorable_at_press(self, token: str, used_by: str) -> bool:
        """pending → unrestorable: the backup was no longer completed when the restore was confirmed."""
        return self._move(token, ConfirmationState.PENDING, ConfirmationState.UNRESTORABLE, used_by)

    def write_found_nothing(self, token: str) -> bool:
        """used → gone: the API answered 404 to the write."""
        return self._move(token, ConfirmationState.USED, ConfirmationState.GONE)

    def write_failed(self, token: str) -> bool:
        """used → failed: the write failed and may or may not have happened; it is never re-sent."""
        return self._move(token, ConfirmationState.USED, ConfirmationState.FAILED)

    # --- the outbox -------------------------------------------------------

    def enqueue_announcement(
        self, channel: str, message: dict, *, claim_seconds: float = 0.0, approval_id: str | None = None
    ) -> int:
        """Keep an announcement until Slack accepts it; with `claim_seconds`, the caller sends it first."""
        now = self._clock().timestamp()
        with self._writing() as db:
            return (
                db["outbox"]
                .insert(
                    {
                        "channel": channel,
                        "message": json.dumps(message),
                        "state": "pending",
                        "attempts": 0,
                        "not_before": now,
                        "claimed_until": now + claim_seconds if claim_seconds else None,
                        "created_at": iso_seconds(self._clock()),
                        "approval_id": approval_id,
                    }
                )
                .last_pk
            )

    def claim_due_announcements(self, *, limit: int = 20, claim_seconds: float = 60.0) -> list[Announcement]:
        """Announcements due now, each claimed by this caller alone for `claim_seconds`."""
        now = self._clock().timestamp()
        claimed = []
        with self._writing() as db:
            rows = db.execute(
                "SELECT id FROM outbox WHERE state = 'pending' AND not_before <= ? "
                "AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id LIMIT ?",
                [now, now, limit],
            ).fetchall()
            for (item_id,) in rows:
                cursor = db.execute(
                    "UPDATE outbox SET claimed_until = ? WHERE id = ? AND state = 'pending' "
                    "AND (claimed_until IS NULL OR claimed_until < ?) RETURNING channel, message, attempts, approval_id",
                    [now + claim_seconds, item_id, now],
                )
                row = cursor.fetchone()
                if row:
                    claimed.append(Announcement(item_id, row[0], json.loads(row[1]), row[2], row[3]))
        return claimed

    def announcement_sent(self, item_id: int) -> None:
        with self._writing() as db:
            db.execute(
                "UPDATE outbox SET state = 'sent', sent_at = ?, attempts = attempts + 1, claimed_until = NULL "
                "WHERE id = ?",
                [iso_seconds(self._clock()), item_id],
            )

    def announcement_retry(self, item_id: int, *, after_seconds: float, error: str) -> None:
        with self._writing() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, not_before = ?, claimed_until = NULL, error = ? "
                "WHERE id = ? AND state = 'pending'",
                [self._clock().timestamp() + after_seconds, error, item_id],
            )

    def announcement_failed(self, item_id: int, error: str) -> None:
        """Slack refused it for good (the channel is gone, the bot is not allowed): stop trying."""
        with self._writing() as db:
            db.execute(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, claimed_until = NULL, error = ? "
                "WHERE id = ?",
                [error, item_id],
            )

    def pending_work(self) -> dict[str, int]:
        """What the bot holds to do later, by kind (for /metrics)."""
        with self._reading() as db:
            return {
                "followed_backups": db.execute("SELECT count(*) FROM followed WHERE state = 'following'").fetchone()[0],
                "announcements": db.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()[0],
                "approval_requests": db.execute(
                    "SELECT count(*) FROM approval_requests WHERE state = 'pending'"
                ).fetchone()[0],
                "deletes_in_window": db.execute(
                    "SELECT count(*) FROM delete_windows WHERE state IN ('waiting', 'sending')"
                ).fetchone()[0],
                "restores_waiting": db.execute(
                    "SELECT count(*) FROM restore_chains WHERE state IN ('creating', 'waiting', 'restoring')"
                ).fetchone()[0],
            }

    def pending_announcements(self) -> int:
        with self._reading() as db:
            return db.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()[0]

    # --- the two-person rule ---------------------------------------------

    def set_approval_rule(self, server_id: int, on: bool, set_by: str) -> bool:
        """Turn the rule on or off for a server; True if that changed anything."""
        with self._writing() as db:
            if on:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO approval_rules (server_id, set_by, set_at) VALUES (?, ?, ?)",
                    [server_id, set_by, iso_seconds(self._clock())],
                )
            else:
                cursor = db.execute("DELETE FROM approval_rules WHERE server_id = ?", [server_id])
            return cursor.rowcount == 1

    def approval_rules(self) -> dict[int, str]:
        """Servers under the two-person rule, with who turned it on."""
        with self._reading() as db:
            return {row[0]: row[1] for row in db.execute("SELECT server_id, set_by FROM approval_rules")}

    def create_approval(self, **fields: Any) -> ApprovalRequest:
        token = secrets.token_urlsafe(12)
        row = {**fields, "id": token, "created_at": iso_seconds(self._clock()), "state": ApprovalState.PENDING.value}
        with self._writing() as db:
            db["approval_requests"].insert(row)
        return self.approval(token)

    def approval(self, request_id: str) -> ApprovalRequest | None:
        with self._reading() as db:
            rows = list(db["approval_requests"].rows_where("id = ?", [request_id]))
        return _approval(rows[0]) if rows else None

    def pending_approvals(self) -> list[ApprovalRequest]:
        with self._reading() as db:
            rows = list(
                db["approval_requests"].rows_where("state = ?", [ApprovalState.PENDING.value], order_by="expires_at")
            )
        return [_approval(r) for r in rows]

    def approval_card_posted(self, request_id: str, channel: str, ts: str) -> None:
        with self._writing() as db:
            db.execute(
                "UPDATE approval_requests SET card_channel = ?, card_ts = ? WHERE id = ?", [channel, ts, request_id]
            )

    def _decide(
        self, request_id: str, old: ApprovalState, new: ApprovalState, by: str | None, detail: str = ""
    ) -> bool:
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE approval_requests SET state = ?, decided_by = coalesce(?, decided_by), "
                "decided_at = coalesce(decided_at, ?), detail = ? WHERE id = ? AND state = ?",
                [new.value, by, iso_seconds(self._clock()), detail, request_id, old.value],
            )
            return cursor.rowcount == 1

    def claim_approval(self, request_id: str, by: str) -> bool:
        """pending → approved, before its expiry: the one approval that may send the write."""
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE approval_requests SET state = 'approved', decided_by = ?, decided_at = ? "
                "WHERE id = ? AND state = 'pending' AND expires_at > ?",
                [by, iso_seconds(self._clock()), request_id, self._clock().timestamp()],
            )
            return cursor.rowcount == 1

    def approval_carried_out(self, request_id: str, detail: str = "") -> bool:
        """approved → done."""
        return self._decide(request_id, ApprovalState.APPROVED, ApprovalState.DONE, None, detail)

    def approval_write_failed(self, request_id: str, detail: str) -> bool:
        """approved → failed: the write failed (and is never re-sent) or the backup was gone."""
        return self._decide(request_id, ApprovalState.APPROVED, ApprovalState.FAILED, None, detail)

    def deny_approval(self, request_id: str, by: str) -> bool:
        """pending → denied."""
        return self._decide(request_id, ApprovalState.PENDING, ApprovalState.DENIED, by)

    def withdraw_approval(self, request_id: str, by: str) -> bool:
        """pending → withdrawn, by its requester."""
        return self._decide(request_id, ApprovalState.PENDING, ApprovalState.WITHDRAWN, by)

    def expire_approvals(self) -> list[ApprovalRequest]:
        """pending → expired for every request past its time; each returned to the one caller that expired it."""
        now = self._clock().timestamp()
        with self._writing() as db:
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM approval_requests WHERE state = 'pending' AND expires_at <= ?", [now]
                )
            ]
        return [self.approval(i) for i in ids if self._decide(i, ApprovalState.PENDING, ApprovalState.EXPIRED, None)]

    def interrupt_stale_approvals(self, older_than_seconds: float) -> list[ApprovalRequest]:
        """approved → failed for requests claimed longer ago than sending their write can take: the approver's
        bot died on the way. Each returned to the one caller that moved it; never re-sent (it may have happened)."""
        cutoff = iso_seconds(self._clock() - timedelta(seconds=older_than_seconds))
        with self._reading() as db:
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM approval_requests WHERE state = 'approved' AND decided_at < ?", [cutoff]
                )
            ]
        detail = "interrupted: the bot stopped while carrying it out; it may have happened"
        return [
            self.approval(i) for i in ids if self._decide(i, ApprovalState.APPROVED, ApprovalState.FAILED, None, detail)
        ]

    # --- leases ------------------------------------------------------------------

    def take_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Hold the lease `name` for `seconds` more, if it is free, lapsed, or already ours; True if we hold it.

        One statement, so two bots asking at once cannot both get it.
        """
        now = time.time()
        with self._writing() as db:
            row = db.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
                "WHERE leases.holder = excluded.holder OR leases.expires_at < ? RETURNING holder",
                [name, holder, now + seconds, now],
            ).fetchone()
        return row is not None and row[0] == holder

    def lease_holder(self, name: str) -> tuple[str, float] | None:
        """Who holds the lease, and until when (epoch seconds), if anyone ever took it."""
        with self._reading() as db:
            row = db.execute("SELECT holder, expires_at FROM leases WHERE name = ?", [name]).fetchone()
        return (row[0], row[1]) if row else None

    def give_up_lease(self, name: str, holder: str) -> None:
        """Let the lease go at once (a clean stop), so another bot need not wait for it to lapse."""
        with self._writing() as db:
            db.execute("UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?", [name, holder])

    # --- languages ---------------------------------------------------------------

    def language_of(self, user_id: str) -> str | None:
        """The language a person chose with `/backup language`, if they did."""
        with self._reading() as db:
            row = db.execute("SELECT language FROM languages WHERE user_id = ?", [user_id]).fetchone()
        return row[0] if row else None

    def set_language(self, user_id: str, language: str) -> bool:
        """Remember a person's language; True if that changed it."""
        with self._writing() as db:
            before = db.execute("SELECT language FROM languages WHERE user_id = ?", [user_id]).fetchone()
            db.execute(
                "INSERT INTO languages (user_id, language, set_at) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET language = excluded.language, set_at = excluded.set_at",
                [user_id, language, iso_seconds(self._clock())],
            )
            return before is None or before[0] != language

    # --- undo windows for deletes ---------------------------------------------

    def open_delete_window(self, **fields: Any) -> DeleteWindow:
        token = secrets.token_urlsafe(12)
        row = {**fields, "id": token, "created_at": iso_seconds(self._clock()), "state": WindowState.WAITING.value}
        with self._writing() as db:
            db["delete_windows"].insert(row)
        return self.delete_window(token)

    def delete_window(self, window_id: str) -> DeleteWindow | None:
        with self._reading() as db:
            rows = list(db["delete_windows"].rows_where("id = ?", [window_id]))
        return _window(rows[0]) if rows else None

    def undo_delete(self, window_id: str, by: str) -> bool:
        """waiting → undone: only while the DELETE has not gone out."""
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE delete_windows SET state = 'undone', decided_by = ? WHERE id = ? AND state = 'waiting'",
                [by, window_id],
            )
            return cursor.rowcount == 1

    def claim_due_deletes(self, *, claim_seconds: float = 120.0, limit: int = 20) -> list[DeleteWindow]:
        """Deletes whose window has ended, each claimed by this caller alone (waiting → sending).

        A claim whose holder died is taken again once it lapses: sending a DELETE twice is harmless
        (the second finds nothing), leaving it unsent is not.
        """
        now = self._clock().timestamp()
        with self._writing() as db:
            rows = db.execute(
                "UPDATE delete_windows SET state = 'sending', claimed_until = ? WHERE id IN ("
                "SELECT id FROM delete_windows WHERE (state = 'waiting' AND due_at <= ?) "
                "OR (state = 'sending' AND claimed_until < ?) ORDER BY due_at LIMIT ?) "
                "AND (state = 'waiting' OR claimed_until < ?) RETURNING id",
                [now + claim_seconds, now, now, limit, now],
            ).fetchall()
        return [self.delete_window(row[0]) for row in rows]

    def end_delete_window(self, window_id: str, state: WindowState, detail: str = "") -> bool:
        """sending → done, gone or failed."""
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE delete_windows SET state = ?, detail = ?, claimed_until = NULL WHERE id = ? AND state = 'sending'",
                [state.value, detail, window_id],
            )
            return cursor.rowcount == 1

    # --- restores waiting on a safety backup -------------------------------------

    def start_chain(self, **fields: Any) -> RestoreChain:
        token = secrets.token_urlsafe(12)
        row = {
            **fields,
            "id": token,
            "created_at": iso_seconds(self._clock()),
            "updated_at": self._clock().timestamp(),
            "state": ChainState.CREATING.value,
        }
        with self._writing() as db:
            db["restore_chains"].insert(row)
        return self.chain(token)

    def chain(self, chain_id: str) -> RestoreChain | None:
        with self._reading() as db:
            rows = list(db["restore_chains"].rows_where("id = ?", [chain_id]))
        return _chain(rows[0]) if rows else None

    def waiting_chains(self) -> list[RestoreChain]:
        with self._reading() as db:
            rows = list(db["restore_chains"].rows_where("state = ?", [ChainState.WAITING.value], order_by="created_at"))
        return [_chain(r) for r in rows]

    def move_chain(
        self, chain_id: str, old: ChainState, new: ChainState, *, detail: str | None = None, **fields: Any
    ) -> bool:
        """Move a chain from `old` to `new`; True only for the one caller that did it."""
        sets = {"state": new.value, "updated_at": self._clock().timestamp(), **fields}
        if detail is not None:
            sets["detail"] = detail
        assignments = ", ".join(f"{name} = ?" for name in sets)
        with self._writing() as db:
            cursor = db.execute(
                f"UPDATE restore_chains SET {assignments} WHERE id = ? AND state = ?",
                [*sets.values(), chain_id, old.value],
            )
            return cursor.rowcount == 1

    def interrupt_stale_chains(self, older_than_seconds: float) -> list[RestoreChain]:
        """Chains stuck mid-step (creating or restoring) longer than a step can take: their process died.

        Each becomes interrupted for the one caller that moves it; nothing is re-sent, since the
        step may have happened.
        """
        cutoff = self._clock().timestamp() - older_than_seconds
        with self._reading() as db:
            rows = list(
                db["restore_chains"].rows_where(
                    "state IN ('creating', 'restoring') AND updated_at < ?", [cutoff], order_by="created_at"
                )
            )
        moved = []
        for row in rows:
            old = ChainState(row["state"])
            if self.move_chain(row["id"], old, ChainState.INTERRUPTED, detail=f"interrupted while {old.value}"):
                moved.append(self.chain(row["id"]))
        return moved


def _window(row: dict) -> DeleteWindow:
    row = dict(row)
    row.pop("claimed_until", None)
    row["state"] = WindowState(row["state"])
    return DeleteWindow(**row)


def _chain(row: dict) -> RestoreChain:
    row = dict(row)
    row["state"] = ChainState(row["state"])
    return RestoreChain(**row)


def _approval(row: dict) -> ApprovalRequest:
    row = dict(row)
    row["state"] = ApprovalState(row["state"])
    row["backup_description"] = row.get("backup_description") or ""
    row["reason"] = row.get("reason") or ""
    row["safety"] = bool(row.get("safety"))
    return ApprovalRequest(**row)


def _words(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return "the store is locked by another process"
    if "readonly" in text or "read-only" in text:
        return "the store cannot be written (read-only)"
    return f"the store failed ({text})"
