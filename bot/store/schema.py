"""Every table of the store, declared once, and what each backend makes of it.

A table is its columns (with Python types), its primary key, its indexes and the
schema version that brought it (`since`; a column added later says so in
`added`). Both backends are built from these declarations, so they cannot drift
apart: SQLite through sqlite-utils (`create`, `add_column`, `create_index`, which
made the tables of every store file that exists), PostgreSQL through DDL
generated here (`postgres_ddl`). Migrating either is the same idempotent act —
create what is missing — followed by the data steps of the versions passed
(`DATA_STEPS`, none yet), in one transaction.

To change the schema: add a table or a column here with the next version in
`since`/`added`, bump `SCHEMA_VERSION`, and say in `copied` whether copy-store
carries its rows. tests/test_store.py holds both backends to these declarations.

History: SQLite files were versioned 1 to 8 by migrations written as sqlite-utils
calls; PostgreSQL's first DDL was numbered 1 and is the SQLite schema at 8
(`LEGACY_POSTGRES_VERSIONS`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils

SCHEMA_VERSION = 12
LEGACY_POSTGRES_VERSIONS = {1: 8}
POSTGRES_TYPES = {int: "BIGINT", str: "TEXT", float: "DOUBLE PRECISION"}


@dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, type]
    pk: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()  # unique indexes (several NULLs allowed, in both backends)
    since: int = 8
    added: dict[str, int] = field(default_factory=dict)  # a column that came after the table: its version
    identity: bool = False  # `id` is given by the database
    copied: bool = True  # copy-store carries its rows (a lease is not worth carrying)


TABLES: tuple[Table, ...] = (
    Table(
        "grants",
        {"user_id": str, "server_id": int, "role": str, "granted_by": str, "granted_at": str},
        pk=("user_id", "server_id"),
    ),
    Table("admins", {"user_id": str, "added_by": str, "added_at": str}, pk=("user_id",)),
    Table(
        "audit",
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
        pk=("id",),
        indexes=(("at",), ("user_id", "id"), ("server_id", "id"), ("action", "id"), ("outcome", "id")),
        identity=True,
    ),
    Table("servers", {"id": int, "name": str, "seen_at": str}, pk=("id",)),
    Table(
        "followed",
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
        pk=("backup_id",),
        indexes=(("state",),),
    ),
    Table(
        "confirmations",
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
            "backup_description": str,
            "newer_count": int,
            "newest_id": int,
            "newest_at": str,
            "target_manual_count": int,
            "safety": int,
            "purpose": str,
            "description": str,
        },
        pk=("id",),
    ),
    Table("noticed", {"backup_id": int, "noticed_at": str}, pk=("backup_id",)),
    Table(
        "outbox",
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
            "approval_id": str,
            "kind": str,
            "ts": str,
            "user_id": str,
            "alert_id": str,
        },
        pk=("id",),
        indexes=(("state", "not_before"),),
        added={"kind": 9, "ts": 9, "user_id": 9, "alert_id": 10},
        identity=True,
    ),
    Table("seen", {"key": str, "at": float}, pk=("key",)),
    Table("approval_rules", {"server_id": int, "set_by": str, "set_at": str}, pk=("server_id",)),
    Table(
        "approval_requests",
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
            "safety": int,
            "card_message": str,
            "payload": str,  # JSON: what a request that is not a delete or restore asks (a policy's new keep)
        },
        pk=("id",),
        indexes=(("state", "expires_at"),),
        added={"card_message": 9, "payload": 12},
    ),
    Table("home_opened", {"user_id": str, "at": str}, pk=("user_id",)),
    Table(
        "server_channels",
        {"server_id": int, "channel_id": str, "added_by": str, "added_at": str},
        pk=("server_id", "channel_id"),
    ),
    Table(
        "delete_windows",
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
        pk=("id",),
        indexes=(("state", "due_at"),),
    ),
    Table(
        "restore_chains",
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
            "request_id": str,
        },
        pk=("id",),
        indexes=(("state", "updated_at"),),
        added={"request_id": 9},
    ),
    Table("languages", {"user_id": str, "language": str, "set_at": str}, pk=("user_id",)),
    Table("leases", {"name": str, "holder": str, "expires_at": float}, pk=("name",), copied=False),
    Table(
        "writes",
        {
            "id": str,
            "kind": str,
            "path": str,
            "ref": str,
            "server_id": int,
            "backup_id": int,
            "description": str,
            "actor": str,
            "source": str,
            "channel_id": str,
            "response_url": str,
            "state": str,
            "detail": str,
            "created_backup_id": int,
            "created_at": str,
            "updated_at": float,
        },
        pk=("id",),
        indexes=(("state", "updated_at"), ("ref",)),
        since=9,
    ),
    Table(
        "server_settings",
        {"server_id": int, "stale_hours": float, "set_by": str, "set_at": str},
        pk=("server_id",),
        since=10,
    ),
    Table(
        "alerts",
        {
            "id": str,
            "server_id": int,
            "kind": str,
            "open_key": str,  # server:kind while open, NULL once recovered: one open alert per server and kind
            "subject_id": int,
            "state": str,
            "facts": str,
            "opened_at": float,
            "reminded_at": float,
            "recovered_at": float,
            "recovery": str,
            "card": str,
        },
        pk=("id",),
        indexes=(("state", "opened_at"), ("server_id", "state")),
        unique=(("open_key",),),
        since=10,
    ),
    Table("alert_cards", {"alert_id": str, "channel": str, "ts": str}, pk=("alert_id", "channel"), since=10),
    Table(
        "policies",
        {
            "server_id": int,
            "cadence": str,
            "days": str,
            "at_time": str,
            "every_hours": int,
            "zone": str,
            "keep_last": int,
            "keep_daily": int,
            "keep_weekly": int,
            "keep_monthly": int,
            "state": str,
            "paused_until": float,
            "pause_reason": str,
            "set_by": str,
            "set_at": float,
            "changed_by": str,
            "changed_at": float,
            "last_slot": float,
        },
        pk=("server_id",),
        since=12,
    ),
    Table(
        "policy_runs",
        {
            "id": str,
            "server_id": int,
            "slot": float,
            "kind": str,
            "state": str,
            "backup_id": int,
            "claimed_until": float,
            "started_at": float,
            "finished_at": float,
            "detail": str,
            "pruned": str,
        },
        pk=("id",),
        indexes=(("state", "claimed_until"),),  # the unique index below serves (server_id, slot)
        unique=(("server_id", "slot"),),
        since=12,
    ),
    Table(
        "pins", {"backup_id": int, "server_id": int, "pinned_by": str, "pinned_at": str}, pk=("backup_id",), since=12
    ),
    Table(
        "digests",
        {
            "channel": str,
            "cadence": str,
            "days": str,
            "at_time": str,
            "zone": str,
            "set_by": str,
            "set_at": float,
            "last_slot": float,
        },
        pk=("channel",),
        since=10,
    ),
    Table(
        "pipeline_tokens",
        {
            "name": str,
            "selector": str,  # the token's public part, to find its row; the rest is only hashed
            "hash": str,  # sha256 of the whole token: the token itself is never kept
            "servers": str,  # the server IDs it reaches, comma-separated
            "made_by": str,
            "made_at": str,
            "revoked_by": str,
            "revoked_at": str,
        },
        pk=("name",),
        indexes=(("selector",),),
        since=11,
    ),
    Table(
        "pipeline_runs",
        {
            "id": str,  # from the Idempotency-Key when there is one: a repeated key claims the same row
            "actor": str,  # token:NAME, or cli:LOGIN
            "server_id": int,
            "server_name": str,
            "idempotency_key": str,
            "request_hash": str,
            "description": str,
            "status": str,
            "backup_id": int,
            "refusal": str,  # why the create was not done: no_room, api
            "detail": str,
            "oldest": str,  # JSON: the oldest manual backup, when there was no room
            "created_at": str,
            "updated_at": float,
            "finished_at": str,
        },
        pk=("id",),
        indexes=(("status", "updated_at"), ("backup_id",)),
        since=11,
    ),
)

BY_NAME = {table.name: table for table in TABLES}
# What copy-store carries over, in an order that needs no deferred checks.
COPIED_TABLES = tuple(table.name for table in TABLES if table.copied)
IDENTITY_TABLES = frozenset(table.name for table in TABLES if table.identity)


# --- SQLite ---------------------------------------------------------------------------------


def migrate_sqlite(db: sqlite_utils.Database) -> None:
    """Create what is missing — tables, columns, indexes — as sqlite-utils makes them (idempotent)."""
    existing = set(db.table_names())
    for table in TABLES:
        target = db[table.name]
        if table.name not in existing:
            target.create(table.columns, pk=table.pk[0] if len(table.pk) == 1 else table.pk)
        else:
            have = target.columns_dict
            for name, kind in table.columns.items():
                if name not in have:
                    target.add_column(name, kind)
        for columns in table.indexes:
            target.create_index(list(columns), if_not_exists=True)
        for columns in table.unique:
            target.create_index(list(columns), unique=True, if_not_exists=True)


SQLITE_TYPES = {int: "INTEGER", str: "TEXT", float: "REAL"}  # what sqlite-utils makes of each


@functools.cache
def sqlite_ddl() -> tuple[str, ...]:
    """The SQL of every table and index a fully migrated SQLite store has, in the order they are made: what
    sqlite-utils makes of the declarations (`migrate_sqlite` on an empty file), written here so a new file
    needs no sqlite-utils. tests/test_store.py holds a new file to the schema of a migrated one."""
    statements = []
    for table in TABLES:
        single = table.pk[0] if len(table.pk) == 1 else None
        columns = [
            f"   {quoted(name)} {SQLITE_TYPES[kind]}" + (" PRIMARY KEY" if name == single else "")
            for name, kind in table.columns.items()
        ]
        if single is None:
            columns.append(f"   PRIMARY KEY ({', '.join(quoted(c) for c in table.pk)})")
        statements.append(f"CREATE TABLE {quoted(table.name)} (\n" + ",\n".join(columns) + "\n)")
        for unique, indexes in (("", table.indexes), ("UNIQUE ", table.unique)):
            for index in indexes:
                name = "_".join(("idx", table.name, *index))
                listed = ", ".join(quoted(c) for c in index)
                statements.append(f"CREATE {unique}INDEX {quoted(name)}\n    ON {quoted(table.name)} ({listed})")
    return tuple(statements)


# --- PostgreSQL -----------------------------------------------------------------------------


def quoted(name: str) -> str:
    return f'"{name}"'


def postgres_ddl() -> tuple[str, ...]:
    """Statements that bring a PostgreSQL schema to these declarations from any earlier state (idempotent).

    Index names follow PostgreSQL's own (`table_col_idx`), so the indexes of a store made by the first,
    hand-written DDL are recognised and not made twice.
    """
    statements = []
    for table in TABLES:
        columns = []
        for name, kind in table.columns.items():
            column = f"{quoted(name)} {POSTGRES_TYPES[kind]}"
            if table.identity and name == "id":
                column += " GENERATED BY DEFAULT AS IDENTITY"
            columns.append(column)
        key = ", ".join(quoted(c) for c in table.pk)
        statements.append(f"CREATE TABLE IF NOT EXISTS {table.name} ({', '.join(columns)}, PRIMARY KEY ({key}))")
        for name, kind in table.columns.items():
            if name in table.added:
                statements.append(
                    f"ALTER TABLE {table.name} ADD COLUMN IF NOT EXISTS {quoted(name)} {POSTGRES_TYPES[kind]}"
                )
        for index in table.indexes:
            index_name = "_".join((table.name, *index, "idx"))
            listed = ", ".join(quoted(c) for c in index)
            statements.append(f"CREATE INDEX IF NOT EXISTS {index_name} ON {table.name} ({listed})")
        for index in table.unique:
            index_name = "_".join((table.name, *index, "key"))
            listed = ", ".join(quoted(c) for c in index)
            statements.append(f"CREATE UNIQUE INDEX IF NOT EXISTS {index_name} ON {table.name} ({listed})")
    return tuple(statements)
