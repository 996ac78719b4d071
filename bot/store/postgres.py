"""The store on PostgreSQL, for several bots sharing one database (BACKUPBOT_DB=postgresql://…).

`PgStore` runs the same queries as every store (bot/store/queries.py) on a
psycopg 3 pool instead of a SQLite file; only SQLite's `?` placeholders are put
into psycopg's `%s`. Connections are in autocommit, so each statement is its
own transaction, and the store's claims (`UPDATE … WHERE state = … RETURNING`)
act once however many bots race: PostgreSQL re-checks the WHERE on the row it
locked.

The schema is the one declared in bot/store/schema.py, versioned in
`schema_version` and migrated at start under an advisory lock, so two bots
starting together migrate once. `copy_store` moves a SQLite store here.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from bot.clock import utc_now
from bot.store.errors import StoreError, StoreUnavailable
from bot.store.queries import Store
from bot.store.schema import (
    COPIED_TABLES,
    IDENTITY_TABLES,
    LEGACY_POSTGRES_VERSIONS,
    SCHEMA_VERSION,
    postgres_ddl,
    quoted,
)

MIGRATION_LOCK = 7_202_611  # pg_advisory_lock key: one bot migrates at a time


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _postgres_sql(sql: str) -> str:
    """The queries' placeholders (`?`) as psycopg's (`%s`)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgSql:
    """One pooled connection, as the queries speak to it."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor:
        return self.conn.execute(_postgres_sql(sql), list(params))

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(_postgres_sql(sql), list(params))
            return cursor.fetchall()


class PgStore(Store):
    """The store on PostgreSQL: the same queries and transitions, on a pool of autocommit connections."""

    def __init__(self, url: str, *, clock=utc_now, pool_size: int = 4, connect_seconds: float = 5.0):
        self.path = redacted(url)
        self._clock = clock
        try:
            # One plain connection first: a wrong URL or a database that is down fails at once, in its own words,
            # rather than after the pool has retried for `connect_seconds`.
            psycopg.connect(url, connect_timeout=max(1, int(connect_seconds))).close()
            self.pool = ConnectionPool(
                url,
                min_size=1,
                max_size=pool_size,
                kwargs={"autocommit": True, "connect_timeout": max(1, int(connect_seconds))},
                timeout=connect_seconds,
                open=False,
            )
            self.pool.open(wait=True, timeout=connect_seconds)
            self._migrate()
        except (psycopg.Error, PoolTimeout) as exc:
            if hasattr(self, "pool"):
                self.pool.close()
            raise StoreError(f"BACKUPBOT_DB={self.path}: cannot use the PostgreSQL store ({_first_line(exc)})") from exc

    def close(self) -> None:
        self.pool.close()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[PgSql]:
        try:
            with self.pool.connection() as conn:
                yield PgSql(conn)
        except PoolTimeout as exc:
            raise StoreUnavailable("the PostgreSQL store is not answering") from exc
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"the PostgreSQL store failed ({_first_line(exc)})") from exc
        except psycopg.DatabaseError as exc:
            raise StoreUnavailable(f"the PostgreSQL store refused a query ({_first_line(exc)})") from exc

    _reading = _writing

    def check_writable(self) -> None:
        with self._writing() as db:
            db.execute("SELECT 1").fetchone()

    def table_names(self) -> set[str]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            ).fetchall()
        return {name for (name,) in rows}

    def schema_version(self) -> int:
        with self._reading() as db:
            version = db.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
        return LEGACY_POSTGRES_VERSIONS.get(version, version)

    def _migrate(self) -> None:
        with self.pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
            try:
                conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_at TEXT)")
                current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
                if LEGACY_POSTGRES_VERSIONS.get(current, current) >= SCHEMA_VERSION:
                    return
                with conn.transaction():
                    for statement in postgres_ddl():
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_version (version, applied_at) VALUES (%s, %s)",
                        [SCHEMA_VERSION, self._clock().isoformat()],
                    )
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK])


def copy_store(source: Store, target: PgStore) -> dict[str, int]:
    """Copy every row of a SQLite store into an empty PostgreSQL one; returns the rows copied per table."""
    counts = target.table_counts()
    if any(counts.values()):
        busy = ", ".join(f"{t} ({n})" for t, n in counts.items() if n)
        raise StoreError(f"the target store is not empty: {busy}; copy-store only fills a new one")
    copied = {}
    with target.pool.connection() as conn, conn.transaction():
        for table in COPIED_TABLES:
            rows = source.table_rows(table)
            columns = list(rows[0]) if rows else []
            if rows:
                listed = ", ".join(quoted(c) for c in columns)
                sql = f"INSERT INTO {table} ({listed}) VALUES ({', '.join(['%s'] * len(columns))})"
                with conn.cursor() as cursor:
                    cursor.executemany(sql, [[row[c] for c in columns] for row in rows])
            copied[table] = len(rows)
        for table in IDENTITY_TABLES:
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) FROM {table}"
            )
    return copied


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
