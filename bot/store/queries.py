"""Every query and state transition of the store, written once for both backends.

A backend (bot/store/sqlite.py, bot/store/postgres.py) gives `Store` a connection
through `_writing()` and `_reading()`, each an `Sql`: plain SQL in the dialect both
SQLite and PostgreSQL speak (`?` placeholders, `ON CONFLICT`, `RETURNING`), no table
introspection on any call. Each statement is its own transaction.

Work that outlives a request is a row with a state, moved by one statement that
names the state it expects (`UPDATE … WHERE id = ? AND state = ?`): when several
callers race — two presses, two bots on one database — exactly one of them sees
its row change, and only that one acts.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from bot.clock import iso_seconds, utc_now
from bot.policy import Role
from bot.store.errors import WouldWait
from bot.store.records import (
    OUTCOMES,
    Alert,
    AlertKind,
    Announcement,
    ApprovalRequest,
    ApprovalState,
    AuditEntry,
    AuditSearch,
    ChainState,
    Confirmation,
    ConfirmationState,
    DeleteWindow,
    Digest,
    DueWork,
    Followed,
    Grant,
    PipelineRun,
    PipelineToken,
    Policy,
    PolicyRun,
    RestoreChain,
    RunStatus,
    Standing,
    WindowState,
    WriteRecord,
    WriteState,
    approval_from_row,
    chain_from_row,
    confirmation_from_row,
    window_from_row,
)
from bot.store.schema import COPIED_TABLES, IDENTITY_TABLES, quoted

T = TypeVar("T")
NAMES_REFRESH_SECONDS = 300.0  # how long this process trusts what it knows of the server names in the store
SOURCES = ("slack", "cli", "policy", "token")  # who acted: a person in Slack, the CLI, a policy, a token


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Sql(Protocol):
    """One connection, as the queries speak to it."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...


def insert(db: Sql, table: str, row: dict[str, Any], *, ignore: bool = False) -> int | None:
    """Insert one row; the id the database gave it, for a table whose ids it gives."""
    columns = ", ".join(quoted(c) for c in row)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(row))})"
    if ignore:
        sql += " ON CONFLICT DO NOTHING"
    if table in IDENTITY_TABLES:
        found = db.execute(sql + " RETURNING id", list(row.values())).fetchone()
        return found[0] if found else None
    db.execute(sql, list(row.values()))
    return None


class Store:
    """The store's queries; a backend subclass supplies the connections (see the module docstring)."""

    path: str
    _clock = staticmethod(utc_now)
    _names: dict[int, str] | None = None  # server names the store holds, as this process last read or wrote them
    _work_added: Callable[[], None] | None = None  # see on_new_work
    _names_read_at = 0.0

    def _writing(self) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def _reading(self) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def in_one_transaction(self, calls: Sequence[tuple[Callable[..., Any], dict[str, Any]]]) -> list[tuple[bool, Any]]:
        """Make several of this store's writes, in order: each one's (True, result) or (False, its exception).
        Here each is its own transaction; SqliteStore commits them together (see there)."""
        outcomes: list[tuple[bool, Any]] = []
        for fn, fields in calls:
            try:
                outcomes.append((True, fn(**fields)))
            except Exception as exc:  # noqa: BLE001 - handed to the one caller whose write it was
                outcomes.append((False, exc))
        return outcomes

    def read_now(self, read: Callable[..., T], *args: Any) -> T:
        """Run `read` (one of this store's reads) here and now, if the store can answer it without waiting;
        else raise WouldWait, and the caller reads in a thread. Only SQLite can (see SqliteStore.read_now)."""
        raise WouldWait("this store is read in a thread")

    def schema_version(self) -> int:
        raise NotImplementedError

    def check_writable(self) -> None:
        raise NotImplementedError

    def table_names(self) -> set[str]:
        raise NotImplementedError

    def table_rows(self, table: str) -> list[dict]:
        """Every row of one table, as it is stored (for copy-store); none if the table does not exist."""
        if table not in self.table_names():
            return []
        with self._reading() as db:
            return db.rows(f"SELECT * FROM {table}")

    def table_counts(self) -> dict[str, int]:
        """How many rows each table copy-store carries holds."""
        with self._reading() as db:
            return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in COPIED_TABLES}

    # --- grants and admins ------------------------------------------------

    def grant(self, user_id: str, server_id: int, role: Role, granted_by: str) -> None:
        with self._writing() as db:
            db.execute(
                "INSERT INTO grants (user_id, server_id, role, granted_by, granted_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id, server_id) DO UPDATE SET role = excluded.role, "
                "granted_by = excluded.granted_by, granted_at = excluded.granted_at",
                [user_id, server_id, role.label, granted_by, iso_seconds(self._clock())],
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

    def standing(self, user_id: str, server_id: int | None = None) -> Standing:
        """Whether the person is an admin (in the store), their role on `server_id`, their language: one query."""
        with self._reading() as db:
            row = db.execute(
                "SELECT EXISTS (SELECT 1 FROM admins WHERE user_id = ?), "
                "(SELECT role FROM grants WHERE user_id = ? AND server_id = ?), "
                "(SELECT language FROM languages WHERE user_id = ?)",
                [user_id, user_id, server_id, user_id],
            ).fetchone()
        return Standing(user_id, server_id, bool(row[0]), Role.parse(row[1]) if row[1] else None, row[2])

    def grants(self, user_id: str | None = None) -> list[Grant]:
        where, args = ("WHERE user_id = ?", [user_id]) if user_id else ("", [])
        with self._reading() as db:
            rows = db.rows(f"SELECT * FROM grants {where} ORDER BY user_id, server_id", args)
        return [
            Grant(r["user_id"], r["server_id"], Role.parse(r["role"]), r["granted_by"], r["granted_at"]) for r in rows
        ]

    def add_admin(self, user_id: str, added_by: str) -> None:
        with self._writing() as db:
            db.execute(
                "INSERT INTO admins (user_id, added_by, added_at) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET added_by = excluded.added_by, added_at = excluded.added_at",
                [user_id, added_by, iso_seconds(self._clock())],
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
            return insert(
                db,
                "audit",
                {
                    "at": at or iso_seconds(self._clock()),
                    "user_id": user_id,
                    "action": action,
                    "server_id": server_id,
                    "backup_id": backup_id,
                    "outcome": outcome,
                    "detail": detail[:1000],
                    "source": source,
                },
            )

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
                    "INSERT INTO server_channels (server_id, channel_id, added_by, added_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
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

    def knows_names(self, servers: dict[int, str]) -> bool:
        """Whether the store holds each of these servers under that name already, as far as this process knows
        (no I/O: what it read and wrote in the last NAMES_REFRESH_SECONDS)."""
        names = self._names
        if names is None or time.monotonic() - self._names_read_at > NAMES_REFRESH_SECONDS:
            return False
        return all(names.get(sid) == name for sid, name in servers.items())

    def learn_servers(self, servers: Iterable[tuple[int, str]]) -> None:
        """Remember server names: only those new or renamed are written, all in one transaction.

        What the store holds is read again every NAMES_REFRESH_SECONDS, so a name another process wrote
        meanwhile is put right within that time."""
        unique = dict(servers)
        if not unique:
            return
        names = self._names
        if names is None or time.monotonic() - self._names_read_at > NAMES_REFRESH_SECONDS:
            names, self._names_read_at = self.server_names(), time.monotonic()
            self._names = names
        new = {sid: name for sid, name in unique.items() if names.get(sid) != name}
        if not new:
            return
        now = iso_seconds(self._clock())
        with self._writing() as db:
            for sid, name in new.items():
                db.execute(
                    "INSERT INTO servers (id, name, seen_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, seen_at = excluded.seen_at",
                    [sid, name, now],
                )
        self._names = {**names, **new}

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
            insert(
                db,
                "followed",
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
                ignore=True,
            )
        self._new_work()

    def following(self) -> list[Followed]:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM followed WHERE state = 'following' ORDER BY backup_id")
        return [Followed.from_row(r) for r in rows]

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
                "INSERT INTO noticed (backup_id, noticed_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [backup_id, iso_seconds(self._clock())],
            )
            return cursor.rowcount == 1

    def first_time(self, key: str) -> bool:
        """Remember `key` (a Socket Mode envelope, an event); True only the first time it is seen."""
        with self._writing() as db:
            cursor = db.execute("INSERT INTO seen (key, at) VALUES (?, ?) ON CONFLICT DO NOTHING", [key, time.time()])
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
            insert(db, "confirmations", row)
        return self.confirmation(token)

    def confirmation(self, token: str) -> Confirmation | None:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM confirmations WHERE id = ?", [token])
        return confirmation_from_row(rows[0]) if rows else None

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
        self,
        channel: str,
        message: dict,
        *,
        claim_seconds: float = 0.0,
        approval_id: str | None = None,
        kind: str = "post",
        ts: str | None = None,
        user_id: str | None = None,
        after_seconds: float = 0.0,
        alert_id: str | None = None,
    ) -> int:
        """Keep a message until Slack accepts it (see `Announcement`); with `claim_seconds`, the caller sends it
        first; with `after_seconds`, it is not due before then."""
        now = self._clock().timestamp()
        with self._writing() as db:
            item = insert(
                db,
                "outbox",
                {
                    "channel": channel,
                    "message": json.dumps(message),
                    "state": "pending",
                    "attempts": 0,
                    "not_before": now + after_seconds,
                    "claimed_until": now + claim_seconds if claim_seconds else None,
                    "created_at": iso_seconds(self._clock()),
                    "approval_id": approval_id,
                    "kind": kind,
                    "ts": ts,
                    "user_id": user_id,
                    "alert_id": alert_id,
                },
            )
        self._new_work()
        return item

    def claim_due_announcements(self, *, limit: int = 20, claim_seconds: float = 60.0) -> list[Announcement]:
        """Announcements due now, each claimed by this caller alone for `claim_seconds`."""
        now = self._clock().timestamp()
        with self._writing() as db:
            rows = db.execute(
                "UPDATE outbox SET claimed_until = ? WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' "
                "AND not_before <= ? AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id LIMIT ?) "
                "AND state = 'pending' AND (claimed_until IS NULL OR claimed_until < ?) "
                "RETURNING id, channel, message, attempts, approval_id, kind, ts, user_id, alert_id",
                [now + claim_seconds, now, now, limit, now],
            ).fetchall()
        claimed = [
            Announcement(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5] or "post", row[6], row[7], row[8])
            for row in rows
        ]
        return sorted(claimed, key=lambda item: item.id)

    def rewrite_pending_card(self, approval_id: str, message: dict) -> int:
        """A card not yet posted is posted as its request now stands: its pending post gets `message`."""
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE outbox SET message = ? WHERE approval_id = ? AND state = 'pending' "
                "AND (kind IS NULL OR kind = 'post')",
                [json.dumps(message), approval_id],
            )
            return cursor.rowcount

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
        self._new_work()

    def announcement_failed(self, item_id: int, error: str) -> None:
        """Slack refused it for good (the channel is gone, the bot is not allowed): stop trying."""
        with self._writing() as db:
            db.execute(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, claimed_until = NULL, error = ? "
                "WHERE id = ?",
                [error, item_id],
            )

    # What the background loop has to do, in one read: each probe is true when the claim or read of that
    # chore (the query named beside it) would find something now. Keep each in step with its query.
    DUE_PROBES = (
        # claim_due_announcements
        "outbox",
        # expire_approvals
        "expired approvals",
        # stale_approvals(stale_seconds)
        "stale approvals",
        # claim_due_deletes
        "due deletes",
        # stale_chains(stale_seconds)
        "stale chains",
        # following, waiting_chains
        "following",
    )

    def due_work(self, stale_seconds: float) -> DueWork:
        """Which of DUE_PROBES have something to do now (stale: mid-step longer than `stale_seconds`), and when the
        earliest work not due yet will be: one statement of indexed reads, so an idle tick of the background loop
        is one read (and the loop need not tick again before that work, or new work, comes)."""
        now = self._clock()
        at, cutoff = now.timestamp(), now.timestamp() - stale_seconds
        cutoff_iso = iso_seconds(now - timedelta(seconds=stale_seconds))
        with self._reading() as db:
            row = db.execute(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE state = 'pending' AND not_before <= ? "
                "AND (claimed_until IS NULL OR claimed_until < ?)), "
                "EXISTS (SELECT 1 FROM approval_requests WHERE state = 'pending' AND expires_at <= ?), "
                "EXISTS (SELECT 1 FROM approval_requests WHERE state = 'approved' AND decided_at < ?), "
                "EXISTS (SELECT 1 FROM delete_windows WHERE (state = 'waiting' AND due_at <= ?) "
                "OR (state = 'sending' AND claimed_until < ?)), "
                "EXISTS (SELECT 1 FROM restore_chains WHERE state IN ('creating', 'restoring') AND updated_at < ?), "
                "EXISTS (SELECT 1 FROM followed WHERE state = 'following') "
                "OR EXISTS (SELECT 1 FROM restore_chains WHERE state = 'waiting'), "
                # when each of the first five is next due, whether or not it is now
                "(SELECT min(CASE WHEN claimed_until > not_before THEN claimed_until ELSE not_before END) "
                "FROM outbox WHERE state = 'pending'), "
                "(SELECT min(expires_at) FROM approval_requests WHERE state = 'pending'), "
                "(SELECT min(decided_at) FROM approval_requests WHERE state = 'approved'), "
                "(SELECT min(CASE WHEN state = 'waiting' THEN due_at ELSE claimed_until END) FROM delete_windows "
                "WHERE state IN ('waiting', 'sending')), "
                "(SELECT min(updated_at) FROM restore_chains WHERE state IN ('creating', 'restoring'))",
                [at, at, at, cutoff_iso, at, at, cutoff],
            ).fetchone()
        probes = len(self.DUE_PROBES)
        due = frozenset(name for name, is_due in zip(self.DUE_PROBES, row[:probes], strict=True) if is_due)
        outbox, expires, decided, deletes, chains = row[probes:]
        times = [outbox, expires, deletes]
        if decided is not None:
            times.append(datetime.fromisoformat(decided).timestamp() + stale_seconds)
        if chains is not None:
            times.append(chains + stale_seconds)
        later = [t - at for t in times if t is not None and t >= at]
        return DueWork(due, min(later) if later else None)

    def on_new_work(self, callback: Callable[[], None] | None) -> None:
        """Have `callback` called (from whichever thread wrote) whenever this store is given work that outlives a
        request: the background loop wakes for it rather than finding it at its next look."""
        self._work_added = callback

    def _new_work(self) -> None:
        """Called by each write that gives the store such work, once it is committed."""
        if self._work_added is not None:
            self._work_added()

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
                    "INSERT INTO approval_rules (server_id, set_by, set_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
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
            insert(db, "approval_requests", row)
        self._new_work()
        return self.approval(token)

    def approval(self, request_id: str) -> ApprovalRequest | None:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM approval_requests WHERE id = ?", [request_id])
        return approval_from_row(rows[0]) if rows else None

    def pending_approvals(self) -> list[ApprovalRequest]:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM approval_requests WHERE state = 'pending' ORDER BY expires_at")
        return [approval_from_row(r) for r in rows]

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
            claimed = cursor.rowcount == 1
        if claimed:
            self._new_work()
        return claimed

    def end_approval(self, request_id: str, state: ApprovalState, detail: str = "") -> bool:
        """approved → done, failed or unknown: how its write ended; True only for the one caller that moved it."""
        return self._decide(request_id, ApprovalState.APPROVED, state, None, detail)

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

    def stale_approvals(self, older_than_seconds: float) -> list[ApprovalRequest]:
        """Requests approved longer ago than carrying them out can take: the approver's bot died on the way.

        Only read: whoever settles one moves it with `end_approval`, which one caller alone can do.
        """
        cutoff = iso_seconds(self._clock() - timedelta(seconds=older_than_seconds))
        with self._reading() as db:
            rows = db.rows("SELECT * FROM approval_requests WHERE state = 'approved' AND decided_at < ?", [cutoff])
        return [approval_from_row(r) for r in rows]

    def keep_card(self, request_id: str, message: dict) -> None:
        """The card as its request ended (rendered for the team), for a card Slack takes only later."""
        with self._writing() as db:
            db.execute("UPDATE approval_requests SET card_message = ? WHERE id = ?", [json.dumps(message), request_id])

    def kept_card(self, request_id: str) -> dict | None:
        with self._reading() as db:
            row = db.execute("SELECT card_message FROM approval_requests WHERE id = ?", [request_id]).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    # --- leases ------------------------------------------------------------------

    def take_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Hold the lease `name` for `seconds` more, if it is free, lapsed, or already ours; True if we hold it.

        One statement, so two bots asking at once cannot both get it.
        """
        now = self._clock().timestamp()  # wall time, as every bot sharing the store reads it
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
            insert(db, "delete_windows", row)
        self._new_work()
        return self.delete_window(token)

    def delete_window(self, window_id: str) -> DeleteWindow | None:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM delete_windows WHERE id = ?", [window_id])
        return window_from_row(rows[0]) if rows else None

    def undo_delete(self, window_id: str, by: str) -> bool:
        """waiting → undone: only before the time the window ends (whether or not its DELETE has gone out yet)."""
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE delete_windows SET state = 'undone', decided_by = ? WHERE id = ? AND state = 'waiting' "
                "AND due_at > ?",
                [by, window_id, self._clock().timestamp()],
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
            insert(db, "restore_chains", row)
        self._new_work()
        return self.chain(token)

    def chain(self, chain_id: str) -> RestoreChain | None:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM restore_chains WHERE id = ?", [chain_id])
        return chain_from_row(rows[0]) if rows else None

    def chain_of_request(self, request_id: str) -> RestoreChain | None:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM restore_chains WHERE request_id = ?", [request_id])
        return chain_from_row(rows[0]) if rows else None

    def waiting_chains(self) -> list[RestoreChain]:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM restore_chains WHERE state = 'waiting' ORDER BY created_at")
        return [chain_from_row(r) for r in rows]

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
            moved = cursor.rowcount == 1
        if moved:
            self._new_work()
        return moved

    def stale_chains(self, older_than_seconds: float) -> list[RestoreChain]:
        """Chains stuck mid-step (creating or restoring) longer than a step can take: their bot died.

        Only read: whoever settles one moves it with `move_chain`, which one caller alone can do.
        """
        cutoff = self._clock().timestamp() - older_than_seconds
        with self._reading() as db:
            rows = db.rows(
                "SELECT * FROM restore_chains WHERE state IN ('creating', 'restoring') AND updated_at < ? "
                "ORDER BY created_at",
                [cutoff],
            )
        return [chain_from_row(r) for r in rows]

    # --- writes to the backup API ---------------------------------------------------

    def begin_write(self, **fields: Any) -> str:
        """Record a write before it is sent (state sending); returns its id."""
        token = secrets.token_urlsafe(9)
        now = self._clock()
        row = {
            **fields,
            "id": token,
            "state": WriteState.SENDING.value,
            "created_at": iso_seconds(now),
            "updated_at": now.timestamp(),
        }
        with self._writing() as db:
            insert(db, "writes", row)
        return token

    def end_write(
        self, write_id: str, state: WriteState, detail: str = "", created_backup_id: int | None = None
    ) -> bool:
        """sending (or settling) → its outcome; True only for the one caller that recorded it."""
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE writes SET state = ?, detail = ?, created_backup_id = coalesce(?, created_backup_id), "
                "updated_at = ? WHERE id = ? AND state IN ('sending', 'settling')",
                [state.value, detail[:1000], created_backup_id, self._clock().timestamp(), write_id],
            )
            return cursor.rowcount == 1

    def write(self, write_id: str) -> WriteRecord | None:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM writes WHERE id = ?", [write_id])
        return WriteRecord.from_row(rows[0]) if rows else None

    def writes_for(self, ref: str) -> list[WriteRecord]:
        """The writes a piece of work (a delete window, a chain, a request) sent, oldest first."""
        with self._reading() as db:
            rows = db.rows("SELECT * FROM writes WHERE ref = ? ORDER BY created_at, updated_at", [ref])
        return [WriteRecord.from_row(r) for r in rows]

    def claim_stale_write(self, write_id: str, older_than_seconds: float) -> bool:
        """sending → settling, if it has been sending (or settling) longer than that can take (its bot died);
        True only for the one caller that claimed it."""
        cutoff = self._clock().timestamp() - older_than_seconds
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE writes SET state = 'settling', updated_at = ? WHERE id = ? "
                "AND state IN ('sending', 'settling') AND updated_at < ?",
                [self._clock().timestamp(), write_id, cutoff],
            )
            return cursor.rowcount == 1

    def unclaim_write(self, write_id: str) -> None:
        """settling → sending: the API could not be asked; another look later."""
        with self._writing() as db:
            db.execute("UPDATE writes SET state = 'sending' WHERE id = ? AND state = 'settling'", [write_id])

    def claim_interrupted_writes(self, paths: Sequence[str], older_than_seconds: float) -> list[WriteRecord]:
        """Writes of these paths left sending longer than a write can take: their bot died. Each is claimed
        (sending → settling) by this caller alone, to be settled by looking."""
        cutoff = self._clock().timestamp() - older_than_seconds
        marks = ", ".join("?" * len(paths))
        with self._writing() as db:
            rows = db.execute(
                f"UPDATE writes SET state = 'settling', updated_at = ? WHERE state IN ('sending', 'settling') "
                f"AND updated_at < ? AND path IN ({marks}) RETURNING id",
                [self._clock().timestamp(), cutoff, *paths],
            ).fetchall()
        return [self.write(row[0]) for row in rows]

    # --- watching: thresholds, alerts, digests -------------------------------------------------

    def known_servers(self) -> dict[int, str | None]:
        """Every server the bot knows of: named by the API, granted, bound to channels, or given a threshold."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT id, name FROM servers UNION SELECT server_id, NULL FROM grants "
                "UNION SELECT server_id, NULL FROM server_channels UNION SELECT server_id, NULL FROM server_settings"
            ).fetchall()
        known: dict[int, str | None] = {}
        for server_id, name in rows:
            known[server_id] = known.get(server_id) or name
        return known

    def stale_hours(self) -> dict[int, float]:
        """The servers with a threshold of their own (hours), apart from BACKUPBOT_STALE_HOURS."""
        with self._reading() as db:
            rows = db.execute("SELECT server_id, stale_hours FROM server_settings WHERE stale_hours IS NOT NULL")
            return {row[0]: row[1] for row in rows}

    def set_stale_hours(self, server_id: int, hours: float | None, set_by: str) -> float | None:
        """A server's own threshold (None: the default again); returns the one it had."""
        with self._writing() as db:
            row = db.execute("SELECT stale_hours FROM server_settings WHERE server_id = ?", [server_id]).fetchone()
            db.execute(
                "INSERT INTO server_settings (server_id, stale_hours, set_by, set_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (server_id) DO UPDATE SET stale_hours = excluded.stale_hours, set_by = excluded.set_by, "
                "set_at = excluded.set_at",
                [server_id, hours, set_by, iso_seconds(self._clock())],
            )
        return row[0] if row else None

    def open_alert(self, server_id: int, kind: str, subject_id: int | None, facts: dict) -> Alert | None:
        """Open an alert, unless one of this kind is open for the server: the new one, to the one caller that
        opened it (one statement: however many bots watch, one alert and one card)."""
        token = secrets.token_urlsafe(9)
        now = self._clock().timestamp()
        with self._writing() as db:
            row = db.execute(
                "INSERT INTO alerts (id, server_id, kind, open_key, subject_id, state, facts, opened_at, reminded_at) "
                "VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
                [token, server_id, kind, f"{server_id}:{kind}", subject_id, json.dumps(facts), now, now],
            ).fetchone()
        return self.alert(token) if row else None

    def alert(self, alert_id: str) -> Alert | None:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM alerts WHERE id = ?", [alert_id])
        return Alert.from_row(rows[0]) if rows else None

    def open_alerts(self) -> list[Alert]:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM alerts WHERE state = 'open' ORDER BY opened_at")
        return [Alert.from_row(r) for r in rows]

    def alerts_since(self, moment: float) -> list[Alert]:
        """Alerts opened at or after `moment` (epoch seconds), oldest first: what happened, for a digest."""
        with self._reading() as db:
            rows = db.rows("SELECT * FROM alerts WHERE opened_at >= ? ORDER BY opened_at", [moment])
        return [Alert.from_row(r) for r in rows]

    def remind_alert(self, alert_id: str, older_than_seconds: float) -> bool:
        """Mark an open alert reminded, if its last reminder is older than that; True for the one caller."""
        now = self._clock().timestamp()
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE alerts SET reminded_at = ? WHERE id = ? AND state = 'open' AND reminded_at < ?",
                [now, alert_id, now - older_than_seconds],
            )
            return cursor.rowcount == 1

    def recover_alert(self, alert_id: str, recovery: dict) -> Alert | None:
        """open → recovered (another of its kind may open later); the alert, to the one caller that moved it."""
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE alerts SET state = 'recovered', open_key = NULL, recovered_at = ?, recovery = ? "
                "WHERE id = ? AND state = 'open'",
                [self._clock().timestamp(), json.dumps(recovery), alert_id],
            )
            moved = cursor.rowcount == 1
        return self.alert(alert_id) if moved else None

    def alert_card_posted(self, alert_id: str, channel: str, ts: str) -> None:
        with self._writing() as db:
            db.execute(
                "INSERT INTO alert_cards (alert_id, channel, ts) VALUES (?, ?, ?) "
                "ON CONFLICT (alert_id, channel) DO UPDATE SET ts = excluded.ts",
                [alert_id, channel, ts],
            )

    def alert_cards(self, alert_id: str) -> list[tuple[str, str]]:
        """Where an alert's cards went: (channel, ts) each."""
        with self._reading() as db:
            rows = db.execute("SELECT channel, ts FROM alert_cards WHERE alert_id = ?", [alert_id]).fetchall()
        return [(row[0], row[1]) for row in rows]

    def keep_alert_card(self, alert_id: str, message: dict) -> None:
        """The card as the alert now stands (recovered), for a card Slack takes only later."""
        with self._writing() as db:
            db.execute("UPDATE alerts SET card = ? WHERE id = ?", [json.dumps(message), alert_id])

    def kept_alert_card(self, alert_id: str) -> dict | None:
        with self._reading() as db:
            row = db.execute("SELECT card FROM alerts WHERE id = ?", [alert_id]).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def rewrite_pending_alert_card(self, alert_id: str, message: dict) -> int:
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE outbox SET message = ? WHERE alert_id = ? AND state = 'pending' "
                "AND (kind IS NULL OR kind = 'post')",
                [json.dumps(message), alert_id],
            )
            return cursor.rowcount

    def set_digest(
        self, channel: str, *, cadence: str, days: Sequence[int], at_time: str, zone: str, set_by: str
    ) -> None:
        """A channel's digest (replacing any it had); the first is sent at its first slot after now."""
        with self._writing() as db:
            db.execute(
                "INSERT INTO digests (channel, cadence, days, at_time, zone, set_by, set_at, last_slot) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (channel) DO UPDATE SET cadence = excluded.cadence, "
                "days = excluded.days, at_time = excluded.at_time, zone = excluded.zone, set_by = excluded.set_by, "
                "set_at = excluded.set_at, last_slot = NULL",
                [channel, cadence, ",".join(str(d) for d in days), at_time, zone, set_by, self._clock().timestamp()],
            )

    def remove_digest(self, channel: str) -> bool:
        with self._writing() as db:
            return db.execute("DELETE FROM digests WHERE channel = ?", [channel]).rowcount == 1

    def digests(self) -> list[Digest]:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM digests ORDER BY channel")
        return [Digest.from_row(r) for r in rows]

    def claim_digest_slot(self, channel: str, slot: float) -> bool:
        """Take the digest of `slot` (epoch seconds) for this channel: True for the one caller, once per slot."""
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE digests SET last_slot = ? WHERE channel = ? AND (last_slot IS NULL OR last_slot < ?)",
                [slot, channel, slot],
            )
            return cursor.rowcount == 1

    def open_alert_counts(self) -> dict[str, int]:
        """Open alerts by kind (for /metrics): every kind, with 0 for none."""
        with self._reading() as db:
            rows = db.execute("SELECT kind, count(*) FROM alerts WHERE state = 'open' GROUP BY kind").fetchall()
        counts = {kind.value: 0 for kind in AlertKind}
        counts.update({kind: count for kind, count in rows})
        return counts

    # --- pipelines: tokens and runs ---------------------------------------------------

    def add_token(self, *, name: str, selector: str, hash: str, servers: Iterable[int], made_by: str) -> bool:
        """Keep a new token (its hash only); False if the name is taken, by a live or a revoked token."""
        with self._writing() as db:
            cursor = db.execute(
                "INSERT INTO pipeline_tokens (name, selector, hash, servers, made_by, made_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [name, selector, hash, ",".join(str(s) for s in sorted(servers)), made_by, iso_seconds(self._clock())],
            )
            return cursor.rowcount == 1

    def token_by_selector(self, selector: str) -> PipelineToken | None:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM pipeline_tokens WHERE selector = ?", [selector])
        return PipelineToken.from_row(rows[0]) if rows else None

    def tokens(self) -> list[PipelineToken]:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM pipeline_tokens ORDER BY name")
        return [PipelineToken.from_row(r) for r in rows]

    def revoke_token(self, name: str, revoked_by: str) -> bool:
        """Revoke a live token; True only for the one caller that did it."""
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE pipeline_tokens SET revoked_by = ?, revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                [revoked_by, iso_seconds(self._clock()), name],
            )
            return cursor.rowcount == 1

    def claim_run(self, **fields: Any) -> tuple[PipelineRun, bool]:
        """Claim a run by its id in one statement (pending); True if this caller made it, False if the id was
        already taken (a repeated Idempotency-Key: the first caller's run comes back, whatever its state)."""
        now = self._clock()
        row = {
            **fields,
            "status": RunStatus.PENDING.value,
            "created_at": iso_seconds(now),
            "updated_at": now.timestamp(),
        }
        columns = ", ".join(quoted(c) for c in row)
        with self._writing() as db:
            cursor = db.execute(
                f"INSERT INTO pipeline_runs ({columns}) VALUES ({', '.join('?' * len(row))}) ON CONFLICT DO NOTHING",
                list(row.values()),
            )
            made = cursor.rowcount == 1
        return self.pipeline_run(fields["id"]), made

    def pipeline_run(self, run_id: str) -> PipelineRun | None:
        """A run as it stands: while in progress, how its followed backup ended (if it has) decides its status."""
        with self._reading() as db:
            rows = db.rows(
                "SELECT r.*, f.state AS follow_state, f.final_status AS final_status, "
                "f.finished_at AS follow_finished_at FROM pipeline_runs r "
                "LEFT JOIN followed f ON f.backup_id = r.backup_id WHERE r.id = ?",
                [run_id],
            )
        return PipelineRun.from_row(rows[0]) if rows else None

    def move_run(self, run_id: str, old: Sequence[RunStatus], new: RunStatus, **fields: Any) -> bool:
        """Move a run from one of `old` to `new` (with `fields`); True only for the one caller that did it.
        A final state stamps `finished_at`."""
        now = self._clock()
        sets = {"status": new.value, "updated_at": now.timestamp(), **fields}
        if new.final:
            sets.setdefault("finished_at", iso_seconds(now))
        assignments = ", ".join(f"{quoted(name)} = ?" for name in sets)
        marks = ", ".join("?" * len(old))
        with self._writing() as db:
            cursor = db.execute(
                f"UPDATE pipeline_runs SET {assignments} WHERE id = ? AND status IN ({marks})",
                [*sets.values(), run_id, *(s.value for s in old)],
            )
            return cursor.rowcount == 1

    def runs_in(self, status: RunStatus, *, updated_before: float, updated_after: float = 0.0) -> list[PipelineRun]:
        """Runs in `status` last moved within those times (epoch seconds), oldest first: only read; whoever acts
        on one moves it with `move_run`, which one caller alone can do."""
        with self._reading() as db:
            rows = db.rows(
                "SELECT id FROM pipeline_runs WHERE status = ? AND updated_at <= ? AND updated_at >= ? "
                "ORDER BY updated_at LIMIT 50",
                [status.value, updated_before, updated_after],
            )
        return [run for run in (self.pipeline_run(r["id"]) for r in rows) if run is not None]

    # --- backup policies --------------------------------------------------------------------------

    def policy(self, server_id: int) -> Policy | None:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM policies WHERE server_id = ?", [server_id])
        return Policy.from_row(rows[0]) if rows else None

    def policies(self) -> list[Policy]:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM policies ORDER BY server_id")
        return [Policy.from_row(r) for r in rows]

    def save_policy(self, server_id: int, fields: dict[str, Any], by: str) -> None:
        """Insert or change a server's policy (only the given fields change); a new one starts counting now."""
        now = self._clock().timestamp()
        values = {**fields, "changed_by": by, "changed_at": now}
        if "days" in values:
            values["days"] = ",".join(str(d) for d in values["days"])
        with self._writing() as db:
            exists = db.execute("SELECT 1 FROM policies WHERE server_id = ?", [server_id]).fetchone()
            if exists is None:
                row = {"server_id": server_id, "state": "active", "set_by": by, "set_at": now, **values}
                insert(db, "policies", row)
                return
            assignments = ", ".join(f"{quoted(k)} = ?" for k in values)
            db.execute(f"UPDATE policies SET {assignments} WHERE server_id = ?", [*values.values(), server_id])

    def claim_policy_slot(self, server_id: int, slot: float) -> bool:
        """Take a slot for this policy: True for the one caller, once per slot (older slots are passed by)."""
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE policies SET last_slot = ? WHERE server_id = ? AND (last_slot IS NULL OR last_slot < ?)",
                [slot, server_id, slot],
            )
            return cursor.rowcount == 1

    def start_policy_run(
        self,
        server_id: int,
        slot: float,
        kind: str,
        *,
        state: str = "creating",
        detail: str = "",
        claim_seconds: float = 0,
    ) -> PolicyRun | None:
        """A run's row, unique per server and slot: the new run, to the one caller that made it."""
        token = secrets.token_hex(4)
        now = self._clock().timestamp()
        with self._writing() as db:
            row = db.execute(
                "INSERT INTO policy_runs (id, server_id, slot, kind, state, claimed_until, started_at, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
                [token, server_id, slot, kind, state, now + claim_seconds if claim_seconds else None, now, detail],
            ).fetchone()
        return self.policy_run(token) if row else None

    def policy_run(self, run_id: str) -> PolicyRun | None:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM policy_runs WHERE id = ?", [run_id])
        return PolicyRun.from_row(rows[0]) if rows else None

    def policy_runs_of(self, server_id: int, limit: int = 20) -> list[PolicyRun]:
        """A policy's runs, newest first."""
        with self._reading() as db:
            rows = db.rows(
                "SELECT * FROM policy_runs WHERE server_id = ? ORDER BY slot DESC LIMIT ?", [server_id, limit]
            )
        return [PolicyRun.from_row(r) for r in rows]

    def policy_runs_since(self, moment: float) -> list[PolicyRun]:
        with self._reading() as db:
            rows = db.rows("SELECT * FROM policy_runs WHERE slot >= ? ORDER BY slot", [moment])
        return [PolicyRun.from_row(r) for r in rows]

    def claim_policy_runs(self, states: Sequence[str], claim_seconds: float) -> list[PolicyRun]:
        """Runs in these states whose claim is free or lapsed, each claimed by this caller alone."""
        now = self._clock().timestamp()
        marks = ", ".join("?" * len(states))
        with self._writing() as db:
            rows = db.execute(
                f"UPDATE policy_runs SET claimed_until = ? WHERE state IN ({marks}) "
                "AND (claimed_until IS NULL OR claimed_until < ?) RETURNING id",
                [now + claim_seconds, *states, now],
            ).fetchall()
        return [self.policy_run(row[0]) for row in rows]

    def move_policy_run(self, run_id: str, old: str, new: str, **fields: Any) -> bool:
        """A run from `old` to `new` (claim released); True only for the one caller that moved it."""
        sets = {"state": new, "claimed_until": None, **fields}
        if "pruned" in sets:
            sets["pruned"] = json.dumps(list(sets["pruned"]))
        if new in ("completed", "failed", "skipped", "missed", "unknown"):
            sets.setdefault("finished_at", self._clock().timestamp())
        assignments = ", ".join(f"{quoted(k)} = ?" for k in sets)
        with self._writing() as db:
            cursor = db.execute(
                f"UPDATE policy_runs SET {assignments} WHERE id = ? AND state = ?", [*sets.values(), run_id, old]
            )
            return cursor.rowcount == 1

    def resume_if_paused(self, server_id: int) -> bool:
        """A pause whose time is up ends: True for the one caller that ended it."""
        now = self._clock().timestamp()
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE policies SET state = 'active', paused_until = NULL, pause_reason = '', changed_at = ? "
                "WHERE server_id = ? AND state = 'paused' AND paused_until <= ?",
                [now, server_id, now],
            )
            return cursor.rowcount == 1

    def release_policy_run(self, run_id: str) -> None:
        with self._writing() as db:
            db.execute("UPDATE policy_runs SET claimed_until = NULL WHERE id = ?", [run_id])

    def pin(self, backup_id: int, server_id: int, by: str, *, pinned: bool) -> bool:
        """Pin a backup (never pruned) or unpin it; True if that changed anything."""
        with self._writing() as db:
            if pinned:
                cursor = db.execute(
                    "INSERT INTO pins (backup_id, server_id, pinned_by, pinned_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    [backup_id, server_id, by, iso_seconds(self._clock())],
                )
            else:
                cursor = db.execute("DELETE FROM pins WHERE backup_id = ?", [backup_id])
            return cursor.rowcount == 1

    def pins(self, server_id: int) -> set[int]:
        with self._reading() as db:
            return {row[0] for row in db.execute("SELECT backup_id FROM pins WHERE server_id = ?", [server_id])}

    def alerts_of(self, server_id: int, kind: str) -> list[Alert]:
        """A server's open alerts of one kind."""
        with self._reading() as db:
            rows = db.rows(
                "SELECT * FROM alerts WHERE server_id = ? AND kind = ? AND state = 'open'", [server_id, kind]
            )
        return [Alert.from_row(r) for r in rows]
