"""The bot's SQLite store, through sqlite-utils.

Tables: grants, admins, audit, servers (names learned from API answers),
followed (backups the bot follows to completion) and confirmations (pending
deletes and restores, consumed at most once). The schema is created and
migrated idempotently on open; WAL mode lets `serve` and the CLI share a file.

One connection, guarded by a lock, so the async app may call the store from a
worker thread while the CLI uses it directly.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from bot.policy import Role

SCHEMA_VERSION = 2
OUTCOMES = ("done", "denied", "failed", "cancelled")
SOURCES = ("slack", "cli")


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
    state: str
    used_by: str | None
    used_at: str | None


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class Store:
    def __init__(self, path: str, *, clock=_now):
        self.path = path
        self._clock = clock
        self._lock = threading.RLock()
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self.db = sqlite_utils.Database(conn)
        with self._lock:
            if path != ":memory:":
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()

    # --- schema -----------------------------------------------------------

    def _migrate(self) -> None:
        db = self.db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            return
        with db.conn:
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
            db["audit"].create_index(["at"], if_not_exists=True)
            db["followed"].create_index(["state"], if_not_exists=True)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # --- grants and admins ------------------------------------------------

    def grant(self, user_id: str, server_id: int, role: Role, granted_by: str) -> None:
        with self._lock:
            self.db["grants"].upsert(
                {
                    "user_id": user_id,
                    "server_id": server_id,
                    "role": role.label,
                    "granted_by": granted_by,
                    "granted_at": _iso(self._clock()),
                },
                pk=("user_id", "server_id"),
            )

    def revoke(self, user_id: str, server_id: int) -> bool:
        with self._lock:
            cursor = self.db.execute("DELETE FROM grants WHERE user_id = ? AND server_id = ?", [user_id, server_id])
            return cursor.rowcount > 0

    def role_of(self, user_id: str, server_id: int) -> Role | None:
        with self._lock:
            row = self.db.execute(
                "SELECT role FROM grants WHERE user_id = ? AND server_id = ?", [user_id, server_id]
            ).fetchone()
        return Role.parse(row[0]) if row else None

    def grants(self, user_id: str | None = None) -> list[Grant]:
        where, args = ("user_id = ?", [user_id]) if user_id else (None, None)
        with self._lock:
            rows = list(self.db["grants"].rows_where(where, args, order_by="user_id, server_id"))
        return [
            Grant(r["user_id"], r["server_id"], Role.parse(r["role"]), r["granted_by"], r["granted_at"]) for r in rows
        ]

    def add_admin(self, user_id: str, added_by: str) -> None:
        with self._lock:
            self.db["admins"].upsert(
                {"user_id": user_id, "added_by": added_by, "added_at": _iso(self._clock())}, pk="user_id"
            )

    def remove_admin(self, user_id: str) -> bool:
        with self._lock:
            return self.db.execute("DELETE FROM admins WHERE user_id = ?", [user_id]).rowcount > 0

    def admins(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self.db.execute("SELECT user_id FROM admins")}

    def is_admin(self, user_id: str) -> bool:
        with self._lock:
            return self.db.execute("SELECT 1 FROM admins WHERE user_id = ?", [user_id]).fetchone() is not None

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
    ) -> int:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
        with self._lock:
            table = self.db["audit"].insert(
                {
                    "at": _iso(self._clock()),
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

    def audit_entries(self, limit: int = 20) -> list[AuditEntry]:
        """The newest `limit` entries, newest first."""
        with self._lock:
            rows = self.db.execute(
                "SELECT id, at, user_id, action, server_id, backup_id, outcome, detail, source "
                "FROM audit ORDER BY id DESC LIMIT ?",
                [limit],
            ).fetchall()
        return [AuditEntry(*row) for row in rows]

    # --- server names -----------------------------------------------------

    def learn_servers(self, servers: Iterable[tuple[int, str]]) -> None:
        unique = dict(servers)
        if not unique:
            return
        now = _iso(self._clock())
        with self._lock:
            self.db["servers"].upsert_all(
                [{"id": sid, "name": name, "seen_at": now} for sid, name in unique.items()], pk="id"
            )

    def server_names(self) -> dict[int, str]:
        with self._lock:
            return {row[0]: row[1] for row in self.db.execute("SELECT id, name FROM servers")}

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
    ) -> None:
        with self._lock:
            self.db["followed"].insert(
                {
                    "backup_id": backup_id,
                    "server_id": server_id,
                    "requested_by": requested_by,
                    "channel_id": channel_id,
                    "response_url": response_url,
                    "description": description,
                    "started_at": _iso(self._clock()),
                    "state": "following",
                },
                pk="backup_id",
                ignore=True,
            )

    def following(self) -> list[Followed]:
        with self._lock:
            rows = list(self.db["followed"].rows_where("state = ?", ["following"], order_by="backup_id"))
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
        with self._lock:
            cursor = self.db.execute(
                "UPDATE followed SET state = 'finished', final_status = ?, finished_at = ? "
                "WHERE backup_id = ? AND state = 'following'",
                [final_status, _iso(self._clock()), backup_id],
            )
            return cursor.rowcount == 1

    def notice(self, backup_id: int) -> bool:
        """Remember a backup the bot has reported on its own; True only the first time."""
        with self._lock:
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO noticed (backup_id, noticed_at) VALUES (?, ?)",
                [backup_id, _iso(self._clock())],
            )
            return cursor.rowcount == 1

    # --- confirmations ----------------------------------------------------

    def create_confirmation(self, **fields: Any) -> Confirmation:
        token = secrets.token_urlsafe(12)
        row = {**fields, "id": token, "created_at": _iso(self._clock()), "state": "pending"}
        with self._lock:
            self.db["confirmations"].insert(row)
        return self.confirmation(token)

    def confirmation(self, token: str) -> Confirmation | None:
        with self._lock:
            rows = list(self.db["confirmations"].rows_where("id = ?", [token]))
        if not rows:
            return None
        row = rows[0]
        row["created_at"] = datetime.fromisoformat(row["created_at"])
        return Confirmation(**row)

    def mark_confirmation(self, token: str, state: str) -> None:
        """Record how a used confirmation ended (`failed`, `gone`), for whoever presses it again."""
        with self._lock:
            self.db.execute("UPDATE confirmations SET state = ? WHERE id = ?", [state, token])

    def consume_confirmation(self, token: str, *, state: str, used_by: str) -> bool:
        """Move a pending confirmation to `state`; True only for the one caller that did it."""
        with self._lock:
            cursor = self.db.execute(
                "UPDATE confirmations SET state = ?, used_by = ?, used_at = ? WHERE id = ? AND state = 'pending'",
                [state, used_by, _iso(self._clock()), token],
            )
            return cursor.rowcount == 1
