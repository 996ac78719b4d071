"""The store on a SQLite file (the default, for one bot): the queries of `Store` on sqlite3 connections.

Two connections, each behind its own lock: one for writes, one for reads.
A write waiting on a file another process has locked therefore never holds
up a read, and WAL lets reads go on while another process writes, so `serve`
and the CLI can share a file. SQLite's errors are translated here, once, into
`StoreUnavailable`.

A third connection, which never waits (no busy timeout, its lock only tried),
answers `read_now`: the few indexed reads the bot makes for every request and
every tick of its background loop run on the event loop itself, in microseconds,
rather than in a thread; whenever that connection would have to wait, the read
goes to a thread as any other.

On open, a new file is given the current schema in one transaction and an
older one is migrated (bot/store/schema.py), also in one transaction, which a
second process opening the file waits for.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.clock import utc_now
from bot.store.errors import StoreError, StoreUnavailable, WouldWait
from bot.store.queries import Store, T
from bot.store.schema import SCHEMA_VERSION, migrate_sqlite, sqlite_ddl

if TYPE_CHECKING:
    import sqlite_utils

DEFAULT_BUSY_SECONDS = 0.5


class SqliteSql:
    """A sqlite3 connection as the queries speak to it."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class SqliteStore(Store):
    def __init__(self, path: str, *, clock=utc_now, busy_seconds: float = DEFAULT_BUSY_SECONDS):
        self.path = path
        self._clock = clock
        self._write_lock = threading.RLock()
        self._read_lock = threading.RLock()
        self._now_lock = threading.Lock()
        self._now: threading.local = threading.local()  # `active` while this thread runs a read_now
        self._now_sql: SqliteSql | None = None
        self._db: sqlite_utils.Database | None = None
        self._grouping = self._new_in_group = False  # in_one_transaction under way (under the write lock)
        try:
            self._conn = self._connect(busy_seconds)
            with self._write_lock:
                if path != ":memory:":
                    self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._migrate()
            self._reader_conn = self._conn if path == ":memory:" else self._connect(busy_seconds)
            if self._reader_conn is self._conn:
                self._read_lock = self._write_lock
            self._write_sql, self._read_sql = SqliteSql(self._conn), SqliteSql(self._reader_conn)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(open_problem(path, exc)) from exc

    @property
    def db(self) -> sqlite_utils.Database:
        """The write connection as sqlite-utils sees it: for migrating a file made by an older version, and for
        looking at the schema. sqlite-utils is loaded only then (a current file never needs it: less memory)."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self._conn)
        return self._db

    def _connect(self, busy_seconds: float) -> sqlite3.Connection:
        return sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=busy_seconds)

    def close(self) -> None:
        with self._write_lock, self._read_lock, self._now_lock:
            if self._now_sql is not None:
                self._now_sql.conn.close()
                self._now_sql = None
            if self._reader_conn is not self._conn:
                self._reader_conn.close()
            self._conn.close()

    def read_now(self, read: Callable[..., T], *args: Any) -> T:
        """Run `read` (one of this store's reads) on this thread, on the connection that never waits: SQLite in
        WAL mode reads beside any writer, so a busy store is no reason to wait; WouldWait if that connection is
        in use by another thread, or SQLite answers busy (recovering a file, say)."""
        if self._reader_conn is self._conn or not self._now_lock.acquire(blocking=False):
            raise WouldWait("the connection for reads at once is in use")
        try:
            if self._now_sql is None:
                self._now_sql = SqliteSql(self._connect(0.0))
            self._now.active = True
            return read(*args)
        except sqlite3.Error as exc:  # connecting
            raise WouldWait(str(exc)) from exc
        finally:
            self._now.active = False
            self._now_lock.release()

    def in_one_transaction(self, calls: Sequence[tuple[Callable[..., Any], dict[str, Any]]]) -> list[tuple[bool, Any]]:
        """Make several writes in one transaction (one commit), in order; each one's (True, result) or (False,
        its exception). Should one of them fail, nothing of the group is kept and each is made again on its
        own, so one bad write never costs the others theirs. A store locked by another process fails them all
        at once (each would wait for the same lock)."""
        if len(calls) == 1:
            return super().in_one_transaction(calls)
        with self._write_lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                unavailable = StoreUnavailable(_words(exc))
                return [(False, unavailable) for _ in calls]
            self._grouping, self._new_in_group = True, False
            try:
                results = []
                for fn, fields in calls:
                    results.append(fn(**fields))
                    if not self._conn.in_transaction:
                        raise StoreUnavailable("a write of the group ended its transaction")
                self._conn.execute("COMMIT")
            except Exception:  # noqa: BLE001 - each is made again on its own below, and fails there if it must
                self._abandon()
            else:
                if self._new_in_group:
                    super()._new_work()
                return [(True, result) for result in results]
            finally:
                self._grouping = False
        return super().in_one_transaction(calls)

    def _new_work(self) -> None:
        if self._grouping:  # told once the group is committed, not before anyone could see it
            self._new_in_group = True
        else:
            super()._new_work()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[SqliteSql]:
        if getattr(self._now, "active", False):
            raise WouldWait("a write is never made at once")
        with self._write_lock:
            try:
                yield self._write_sql
            except sqlite3.DatabaseError as exc:
                self._abandon()
                if isinstance(exc, sqlite3.OperationalError):
                    raise StoreUnavailable(_words(exc)) from exc
                raise StoreUnavailable(f"the store is damaged ({exc})") from exc

    def _abandon(self) -> None:
        """Roll back a transaction a failed write left open: in WAL mode its stale snapshot would
        otherwise keep every later write on this connection failing as 'locked'."""
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[SqliteSql]:
        if getattr(self._now, "active", False):
            try:
                yield self._now_sql
            except sqlite3.OperationalError as exc:
                raise WouldWait(_words(exc)) from exc
            except sqlite3.DatabaseError as exc:
                raise StoreUnavailable(_words(exc)) from exc
            return
        with self._read_lock:
            try:
                yield self._read_sql
            except sqlite3.DatabaseError as exc:
                raise StoreUnavailable(_words(exc)) from exc

    def table_names(self) -> set[str]:
        with self._reading() as db:
            return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def schema_version(self) -> int:
        with self._reading() as db:
            return db.execute("PRAGMA user_version").fetchone()[0]

    def check_writable(self) -> None:
        """Take the write lock for a moment and give it back; raises StoreUnavailable if that cannot be done."""
        with self._writing() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")

    def _migrate(self) -> None:
        """Bring the file to SCHEMA_VERSION in one transaction, which a second process opening it waits for.

        A new file is given the current schema at once (`sqlite_ddl`); an older file is migrated by creating
        what it lacks, keeping its data (through sqlite-utils, loaded only for that).
        """
        conn = self._conn
        if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
                if version == 0 and not tables:
                    for statement in sqlite_ddl():
                        conn.execute(statement)
                else:
                    migrate_sqlite(self.db)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise


def open_problem(path: str, exc: Exception) -> str:
    """One line on why the store at `path` cannot be opened."""
    parent = Path(path).expanduser().parent
    if not parent.is_dir():
        return f"BACKUPBOT_DB={path}: the directory {parent} does not exist"
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
        return f"BACKUPBOT_DB={path}: the file is not an SQLite database"
    return f"BACKUPBOT_DB={path}: cannot open the store ({exc})"


def _words(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return "the store is locked by another process"
    if "readonly" in text or "read-only" in text:
        return "the store cannot be written (read-only)"
    return f"the store failed ({text})"
