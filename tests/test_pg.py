"""The PostgreSQL store's own parts, on a real throwaway PostgreSQL: migrations, copy-store, errors put into words.

(The store's behaviour on PostgreSQL is tests/test_store.py, run on both backends.)
"""

import threading

import pytest
from test_cli import run
from test_store import A_DELETE_WINDOW

from bot.policy import Role
from bot.store import SCHEMA_VERSION, SqliteStore, Store, StoreError, StoreUnavailable
from bot.store.postgres import PgStore, copy_store, redacted
from bot.store.schema import COPIED_TABLES, TABLES


def test_two_replicas_starting_together_migrate_once(pg_url):
    opened, errors = [], []

    def start():
        try:
            opened.append(PgStore(pg_url))
        except Exception as exc:
            errors.append(exc)

    starting = [threading.Thread(target=start) for _ in range(3)]
    for thread in starting:
        thread.start()
    for thread in starting:
        thread.join()
    assert errors == []
    try:
        with opened[0].pool.connection() as conn:
            assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1
        assert opened[0].schema_version() == SCHEMA_VERSION
    finally:
        for store in opened:
            store.close()


def test_an_unreachable_postgres_is_one_line_without_the_password():
    with pytest.raises(StoreError) as refused:
        PgStore("postgresql://bot:hunter2@127.0.0.1:9/none", connect_seconds=1)
    assert "hunter2" not in str(refused.value) and "bot:***@127.0.0.1:9" in str(refused.value)
    assert redacted("postgresql://u@h/db") == "postgresql://u@h/db"


def test_a_query_postgres_refuses_is_store_unavailable_and_the_pool_goes_on(pg_url):
    import psycopg

    store = PgStore(pg_url)
    try:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("DROP TABLE admins")  # the database changed under the bot
        with pytest.raises(StoreUnavailable, match="refused a query"):
            store.is_admin("U1")
        store.grant("U1", 1, Role.OWNER, "x")
        assert store.role_of("U1", 1) is Role.OWNER
    finally:
        store.close()


def filled_sqlite(path) -> Store:
    store = SqliteStore(str(path))
    store.grant("U1", 12345, Role.OWNER, "cli:root")
    store.add_admin("U9", "cli:root")
    for n in range(3):
        store.audit(user_id="U1", action="list", outcome="done", source="slack", detail=f"entry {n}")
    store.enqueue_announcement("C1", {"text": "kept until Slack takes it"})
    store.open_delete_window(**{**A_DELETE_WINDOW, "channel_id": "C1", "due_at": 10**12})
    store.set_language("U1", "ko")
    return store


def test_copy_store_carries_everything_and_the_bot_goes_on_from_there(tmp_path, pg_url):
    filled_sqlite(tmp_path / "cli.db").close()
    copied = run("copy-store", "--to", pg_url, tmp_path=tmp_path)
    assert copied.returncode == 0, copied.stderr
    assert "grants                    1 rows" in copied.stdout and "audit                     3 rows" in copied.stdout
    assert f"into {redacted(pg_url)}" in copied.stdout
    target = PgStore(pg_url)
    try:
        assert target.role_of("U1", 12345) is Role.OWNER and target.is_admin("U9")
        assert [e.detail for e in target.audit_entries()] == ["entry 2", "entry 1", "entry 0"]
        assert len(target.claim_due_announcements()) == 1
        assert target.language_of("U1") == "ko"
        new_id = target.audit(user_id="U2", action="list", outcome="done", source="cli")
        assert new_id == 4, "ids go on after the copied ones"
        assert set(target.table_counts()) == set(COPIED_TABLES)
    finally:
        target.close()
    again = run("copy-store", "--to", pg_url, tmp_path=tmp_path)
    assert again.returncode == 2 and "the target store is not empty: grants (1)" in again.stderr


def test_both_backends_have_the_declared_tables_and_columns(tmp_path, pg_url):
    """The schema is declared once (bot/store/schema.py); each backend must have made exactly that of it."""
    sqlite, postgres = SqliteStore(str(tmp_path / "s.db")), PgStore(pg_url)
    try:
        declared = {t.name: dict(t.columns) for t in TABLES}
        in_sqlite = {
            name: {c: SQLITE_TYPES[kind] for c, kind in sqlite.db[name].columns_dict.items()}
            for name in sqlite.db.table_names()
        }
        with postgres.pool.connection() as conn:
            rows = conn.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name <> 'schema_version'"
            ).fetchall()
        in_postgres: dict[str, dict[str, type]] = {}
        for table, column, data_type in rows:
            in_postgres.setdefault(table, {})[column] = POSTGRES_KINDS[data_type]
        assert in_sqlite == declared
        assert in_postgres == declared
    finally:
        sqlite.close()
        postgres.close()


SQLITE_TYPES = {int: int, str: str, float: float}
POSTGRES_KINDS = {"bigint": int, "text": str, "double precision": float}


def test_copy_store_carries_a_row_of_every_table_that_holds_data(tmp_path, pg_url):
    """Every declared table is copied, or declared not worth copying; a row in each arrives."""
    assert {t.name for t in TABLES if not t.copied} == {"leases"}
    source = SqliteStore(str(tmp_path / "every.db"))
    samples = {int: 7, str: "x", float: 1.5}
    for table in TABLES:
        source.db[table.name].insert({c: samples[kind] for c, kind in table.columns.items()})
    target = PgStore(pg_url)
    try:
        copied = copy_store(source, target)
        assert copied == dict.fromkeys(COPIED_TABLES, 1)
        assert target.table_counts() == dict.fromkeys(COPIED_TABLES, 1)
    finally:
        source.close()
        target.close()


def test_copy_store_refuses_what_it_cannot_do(tmp_path, pg_url):
    assert "--to must be a postgresql:// URL" in run("copy-store", "--to", "x.db", tmp_path=tmp_path).stderr
    assert "there is no SQLite store there" in run("copy-store", "--to", pg_url, tmp_path=tmp_path).stderr
    from_pg = run("copy-store", "--to", pg_url, tmp_path=tmp_path, env={"BACKUPBOT_DB": pg_url})
    assert "already a PostgreSQL store" in from_pg.stderr


def test_migrate_and_doctor_on_postgres(tmp_path, pg_url):
    migrated = run("migrate", tmp_path=tmp_path, env={"BACKUPBOT_DB": pg_url})
    assert migrated.returncode == 0 and f"is at schema version {SCHEMA_VERSION}" in migrated.stdout
    assert f"is at schema version {SCHEMA_VERSION}" in run("migrate", tmp_path=tmp_path).stdout
    doctor = run("doctor", tmp_path=tmp_path, env={"BACKUPBOT_DB": pg_url, "VPS_API_TOKEN": "t"})
    assert "✓ the PostgreSQL store postgresql://postgres@127.0.0.1" in doctor.stdout
    broken = run("doctor", tmp_path=tmp_path, env={"BACKUPBOT_DB": "postgresql://bot:pw@127.0.0.1:9/x"})
    assert "✗ BACKUPBOT_DB=postgresql://bot:***@127.0.0.1:9/x: cannot use the PostgreSQL store" in broken.stdout
    assert "pw@" not in broken.stdout
