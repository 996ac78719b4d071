"""The bot's store: grants, admins, the audit log, and every piece of work that outlives a request.

`open_store(location)` picks the backend BACKUPBOT_DB names: a SQLite file (the default, for one bot) or
a PostgreSQL URL (shared by several bots). Both run the same queries (`queries.Store`) on the tables
declared once in `schema.py`. The rest of the bot imports from here.

    errors.py    StoreError, StoreUnavailable: the only errors a store raises
    records.py   rows as frozen dataclasses, with the enums of their states
    schema.py    every table once, and what each backend makes of it
    queries.py   Store: every query and state transition, written once
    sqlite.py    SqliteStore(Store)
    postgres.py  PgStore(Store), copy_store (imported only for a PostgreSQL store: it loads psycopg)
"""

from __future__ import annotations

from bot.clock import utc_now
from bot.store.errors import StoreError, StoreUnavailable, WouldWait
from bot.store.queries import SOURCES, Store
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
    one_line,
)
from bot.store.schema import SCHEMA_VERSION
from bot.store.sqlite import SqliteStore, open_problem

POSTGRES_SCHEMES = ("postgresql://", "postgres://")

__all__ = [
    "OUTCOMES",
    "SCHEMA_VERSION",
    "SOURCES",
    "Alert",
    "AlertKind",
    "Announcement",
    "ApprovalRequest",
    "ApprovalState",
    "AuditEntry",
    "AuditSearch",
    "ChainState",
    "Confirmation",
    "ConfirmationState",
    "DeleteWindow",
    "Digest",
    "DueWork",
    "Followed",
    "Grant",
    "PipelineRun",
    "PipelineToken",
    "Policy",
    "PolicyRun",
    "RestoreChain",
    "RunStatus",
    "SqliteStore",
    "Standing",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "WindowState",
    "WouldWait",
    "WriteRecord",
    "WriteState",
    "is_postgres_url",
    "one_line",
    "open_problem",
    "open_store",
]


def is_postgres_url(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


def open_store(location: str, *, clock=utc_now) -> Store:
    """The store BACKUPBOT_DB names: a PostgreSQL URL (shared by several bots), else a SQLite file."""
    if is_postgres_url(location):
        from bot.store.postgres import PgStore  # only a PostgreSQL store needs psycopg loaded

        return PgStore(location, clock=clock)
    return SqliteStore(location, clock=clock)
