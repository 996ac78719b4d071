"""The store on real SQLite files and on a real PostgreSQL: one suite, both backends.

Tests that take `store` run on each; `two` gives two stores on one database (two bots), to show
that whatever outlives a request is claimed by one of them only.
"""

import sqlite3
import threading
from datetime import UTC, datetime

import pytest

from bot.policy import Role
from bot.store import (
    SCHEMA_VERSION,
    ApprovalState,
    ChainState,
    ConfirmationState,
    DueWork,
    RunStatus,
    SqliteStore,
    Standing,
    Store,
    StoreError,
    StoreUnavailable,
    WindowState,
    WouldWait,
)
from bot.store.postgres import PgStore

A_CONFIRMATION = dict(
    action="delete",
    backup_id=5,
    server_id=1,
    server_name="one",
    target_server_id=1,
    target_server_name="one",
    backup_created_at="2026-11-29T00:00:00+00:00",
    backup_type="manual",
    requested_by="U1",
)
A_DELETE_WINDOW = dict(
    backup_id=5023,
    server_id=12345,
    server_name="web",
    backup_type="manual",
    requested_by="U1",
    approved_by=None,
    channel_id=None,
    response_url=None,
    due_at=0,
)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    """How to open one more store on the same database, for each backend."""
    if request.param == "sqlite":
        path = str(tmp_path / "store.db")
        return lambda: SqliteStore(path)
    url = request.getfixturevalue("pg_url")
    return lambda: PgStore(url)


@pytest.fixture
def store(backend):
    opened = backend()
    yield opened
    opened.close()


@pytest.fixture
def two(backend):
    first, second = backend(), backend()
    yield first, second
    first.close()
    second.close()


def test_schema_is_created_idempotently_in_wal_mode(tmp_path):
    path = str(tmp_path / "s.db")
    SqliteStore(path).close()
    again = SqliteStore(path)
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"grants", "admins", "audit", "servers", "followed", "confirmations"} <= set(again.db.table_names())
    again.close()


def test_a_second_connection_sees_a_grant_at_once(tmp_path):
    path = str(tmp_path / "shared.db")
    serve, cli = SqliteStore(path), SqliteStore(path)
    cli.grant("U111", 12345, Role.OWNER, "cli:root")
    assert serve.role_of("U111", 12345) is Role.OWNER
    assert cli.revoke("U111", 12345) is True
    assert serve.role_of("U111", 12345) is None
    assert cli.revoke("U111", 12345) is False
    serve.close()
    cli.close()


def test_grant_upserts_and_lists(store):
    store.grant("U1", 1, Role.VIEWER, "x")
    store.grant("U1", 1, Role.OWNER, "y")
    store.grant("U2", 2, Role.OPERATOR, "y")
    assert [(g.user_id, g.server_id, g.role) for g in store.grants()] == [
        ("U1", 1, Role.OWNER),
        ("U2", 2, Role.OPERATOR),
    ]
    assert [g.server_id for g in store.grants("U2")] == [2]


def test_admins_in_the_store(store):
    assert not store.is_admin("U9")
    store.add_admin("U9", "cli:root")
    assert store.is_admin("U9") and store.admins() == {"U9"}
    assert store.remove_admin("U9") and not store.is_admin("U9")


def test_audit_records_and_reads_newest_first(store):
    store.audit(user_id="U1", action="list", outcome="done", source="slack", server_id=1)
    store.audit(user_id="U2", action="delete", outcome="denied", source="slack", server_id=1, backup_id=7, detail="no")
    entries = store.audit_entries(10)
    assert [(e.user_id, e.action, e.outcome) for e in entries] == [("U2", "delete", "denied"), ("U1", "list", "done")]
    assert entries[0].backup_id == 7 and entries[0].as_dict()["detail"] == "no"
    with pytest.raises(ValueError):
        store.audit(user_id="U1", action="x", outcome="maybe", source="slack")


def test_followed_backups_finish_exactly_once(store):
    store.follow(backup_id=5, server_id=1, requested_by="U1", channel_id="C1", response_url="http://r")
    store.follow(backup_id=5, server_id=1, requested_by="U1", channel_id="C1", response_url="http://r")
    assert [f.backup_id for f in store.following()] == [5]
    winners = []
    barrier = threading.Barrier(8)

    def race():
        barrier.wait()
        winners.append(store.finish_follow(5, "completed"))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert winners.count(True) == 1
    assert store.following() == []


def test_confirmation_is_consumed_once(store):
    conf = store.create_confirmation(**A_CONFIRMATION)
    assert conf.state is ConfirmationState.PENDING and len(conf.id) >= 16
    assert store.use_confirmation(conf.id, "U2") is True
    assert store.use_confirmation(conf.id, "U3") is False
    assert store.cancel_confirmation(conf.id, "U3") is False, "only a pending one can be cancelled"
    assert store.confirmation(conf.id).used_by == "U2"
    assert store.write_failed(conf.id) is True and store.write_failed(conf.id) is False
    assert store.confirmation(conf.id).state is ConfirmationState.FAILED
    assert store.confirmation("nope") is None


def test_server_names_learned(store):
    store.learn_servers([(1, "one"), (2, "two"), (1, "uno")])
    assert store.server_names() == {1: "uno", 2: "two"}


def test_server_names_are_written_only_when_new_or_renamed(backend, monkeypatch):
    from datetime import UTC, datetime

    from bot.store import queries

    store, other = backend(), backend()
    try:
        store._clock = lambda: datetime(2026, 1, 1, tzinfo=UTC)
        store.learn_servers([(1, "one")])
        assert store.knows_names({1: "one"})
        assert not store.knows_names({1: "uno"}) and not store.knows_names({1: "one", 2: "two"})
        store._clock = lambda: datetime(2026, 1, 2, tzinfo=UTC)
        store.learn_servers([(1, "one"), (2, "two")])
        seen = {row["id"]: row["seen_at"] for row in store.table_rows("servers")}
        assert seen[1].startswith("2026-01-01") and seen[2].startswith("2026-01-02"), "a known name is not written"
        store.learn_servers([(2, "deux")])
        assert store.server_names() == {1: "one", 2: "deux"} and store.knows_names({2: "deux"})
        other.learn_servers([(1, "uno")])  # another process, which saw another name
        monkeypatch.setattr(queries, "NAMES_REFRESH_SECONDS", 0.0)
        assert not store.knows_names({1: "one"}), "what the store holds is read again in time"
        store.learn_servers([(1, "one")])
        assert store.server_names()[1] == "one"
    finally:
        store.close()
        other.close()


def test_a_version_2_store_is_migrated_and_keeps_its_data(tmp_path):
    path = str(tmp_path / "m.db")
    raw = sqlite3.connect(path)
    raw.executescript(
        "CREATE TABLE grants (user_id TEXT, server_id INTEGER, role TEXT, granted_by TEXT, granted_at TEXT,"
        " PRIMARY KEY (user_id, server_id));"
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, at TEXT, user_id TEXT, action TEXT, server_id INTEGER,"
        " backup_id INTEGER, outcome TEXT, detail TEXT, source TEXT);"
        "INSERT INTO grants VALUES ('U1', 1, 'owner', 'x', '2026-01-01T00:00:00+00:00');"
        "INSERT INTO audit (at, user_id, action, outcome, detail, source)"
        " VALUES ('2026-01-01T00:00:00+00:00', 'U1', 'list', 'done', '', 'slack');"
        "PRAGMA user_version=2;"
    )
    raw.close()
    migrated = SqliteStore(path)
    try:
        assert migrated.role_of("U1", 1) is Role.OWNER
        assert [e.action for e in migrated.audit_entries()] == ["list"]
        assert {"outbox", "seen", "confirmations"} <= set(migrated.db.table_names())
        assert migrated.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 12
        assert {"pipeline_tokens", "pipeline_runs"} <= set(migrated.db.table_names())
        assert "approval_id" in migrated.db["outbox"].columns_dict
    finally:
        migrated.close()


def schema_of(store: Store) -> dict:
    """Each table's columns with their types, and each index's columns: what the store's queries rely on."""
    db = store.db
    return {
        name: (
            {c.name: c.type for c in db[name].columns},
            sorted(tuple(i.columns) for i in db[name].indexes),
            db[name].pks,
        )
        for name in db.table_names()
    }


def test_a_new_store_has_exactly_the_schema_a_migrated_one_has(tmp_path):
    old = sqlite3.connect(tmp_path / "old.db")
    old.executescript(
        "CREATE TABLE grants (user_id TEXT, server_id INTEGER, role TEXT, granted_by TEXT, granted_at TEXT,"
        " PRIMARY KEY (user_id, server_id)); PRAGMA user_version=1;"
    )
    old.close()
    migrated, new = SqliteStore(str(tmp_path / "old.db")), SqliteStore(str(tmp_path / "new.db"))
    try:
        assert schema_of(new) == schema_of(migrated)
        assert len(schema_of(new)) >= 17 and new.schema_version() == migrated.schema_version() == SCHEMA_VERSION
    finally:
        migrated.close()
        new.close()


def test_notice_is_true_only_the_first_time(store):
    assert store.notice(5001) is True
    assert store.notice(5001) is False


def test_first_time_is_true_once_per_key(store):
    assert store.first_time("envelope:1") is True
    assert store.first_time("envelope:1") is False
    assert store.first_time("envelope:2") is True


def test_outbox_items_are_claimed_once_and_kept_until_sent(store):
    first = store.enqueue_announcement("C1", {"text": "one"})
    store.enqueue_announcement("C1", {"text": "two"}, claim_seconds=60)
    claimed = store.claim_due_announcements()
    assert [a.id for a in claimed] == [first], "the second is claimed by whoever is sending it now"
    assert store.claim_due_announcements() == [], "a claimed item is nobody else's"
    store.announcement_retry(first, after_seconds=0, error="ratelimited")
    (again,) = store.claim_due_announcements()
    assert (again.id, again.attempts, again.message) == (first, 1, {"text": "one"})
    store.announcement_sent(first)
    assert store.pending_announcements() == 1
    store.announcement_retry(first, after_seconds=0, error="late")
    assert store.claim_due_announcements() == [], "a sent announcement is never sent again"


def test_a_missing_directory_or_a_file_that_is_not_a_database_is_one_line(tmp_path):
    with pytest.raises(StoreError) as missing:
        SqliteStore(str(tmp_path / "nowhere" / "bot.db"))
    assert (
        str(missing.value) == f"BACKUPBOT_DB={tmp_path}/nowhere/bot.db: the directory {tmp_path}/nowhere does not exist"
    )
    junk = tmp_path / "junk.db"
    junk.write_text("this is not a database, it is a shopping list\n" * 100)
    with pytest.raises(StoreError) as damaged:
        SqliteStore(str(junk))
    assert str(damaged.value) == f"BACKUPBOT_DB={junk}: the file is not an SQLite database"


def test_a_store_locked_by_another_process_fails_writes_quickly_and_keeps_reads_going(tmp_path):
    path = str(tmp_path / "locked.db")
    store = SqliteStore(path, busy_seconds=0.2)
    store.grant("U1", 1, Role.OWNER, "x")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable, match="locked by another process"):
            store.audit(user_id="U1", action="list", outcome="done", source="slack")
        with pytest.raises(StoreUnavailable):
            store.check_writable()
        assert store.role_of("U1", 1) is Role.OWNER, "reads go on while another process holds the write lock"
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.check_writable()
    store.close()


def test_two_bots_on_one_store_claim_each_piece_of_work_once(two):
    one, other = two
    one.follow(backup_id=9, server_id=1, requested_by="U1", channel_id=None, response_url=None)
    assert sorted([one.finish_follow(9, "completed"), other.finish_follow(9, "completed")]) == [False, True]
    conf = one.create_confirmation(**A_CONFIRMATION)
    assert sorted([one.use_confirmation(conf.id, "U1"), other.use_confirmation(conf.id, "U2")]) == [False, True]
    one.enqueue_announcement("C1", {"text": "hi"})
    assert sorted([len(one.claim_due_announcements()), len(other.claim_due_announcements())]) == [0, 1]
    window = one.open_delete_window(**A_DELETE_WINDOW)
    assert sorted([len(one.claim_due_deletes()), len(other.claim_due_deletes())]) == [0, 1]
    assert not other.undo_delete(window.id, "U1"), "no undo once it is being sent"
    assert (
        one.end_delete_window(window.id, WindowState.DONE) and other.delete_window(window.id).state is WindowState.DONE
    )
    chain = one.start_chain(
        backup_id=1,
        server_id=2,
        server_name="s",
        target_server_id=2,
        target_server_name="s",
        requested_by="U1",
        approved_by=None,
        channel_id=None,
        response_url=None,
        safety_backup_id=None,
    )
    assert one.move_chain(chain.id, ChainState.CREATING, ChainState.WAITING, safety_backup_id=9)
    assert [c.safety_backup_id for c in other.waiting_chains()] == [9]
    moves = [s.move_chain(chain.id, ChainState.WAITING, ChainState.RESTORING) for s in (one, other)]
    assert sorted(moves) == [False, True]
    request = one.create_approval(
        action="delete",
        backup_id=1,
        server_id=1,
        server_name="s",
        target_server_id=1,
        target_server_name="s",
        backup_created_at="x",
        backup_type="manual",
        backup_description="",
        requested_by="U1",
        reason="",
        origin_channel=None,
        response_url=None,
        expires_at=10**12,
        safety=0,
    )
    assert sorted([one.claim_approval(request.id, "U2"), other.claim_approval(request.id, "U3")]) == [False, True]


def test_one_bot_holds_the_poller_lease_until_it_lapses_or_is_given_up(two):
    one, other = two
    assert one.take_lease("poller", "a", 30) and one.take_lease("poller", "a", 30), "the holder renews it"
    assert not other.take_lease("poller", "b", 30)
    assert other.lease_holder("poller")[0] == "a"
    one.give_up_lease("poller", "a")
    assert other.take_lease("poller", "b", 0.01)
    assert other.lease_holder("poller")[0] == "b"
    import time

    time.sleep(0.05)
    assert one.take_lease("poller", "a", 30), "a lapsed lease is taken over"


def test_languages_are_kept_per_person(store):
    assert store.language_of("U1") is None
    assert store.set_language("U1", "ko") is True and store.set_language("U1", "ko") is False
    assert store.language_of("U1") == "ko" and store.language_of("U2") is None


def test_a_persons_standing_is_one_read_of_admin_role_and_language(store):
    assert store.standing("U1", 1) == Standing("U1", 1, False, None, None)
    store.grant("U1", 1, Role.OPERATOR, "x")
    store.set_language("U1", "ko")
    assert store.standing("U1", 1) == Standing("U1", 1, False, Role.OPERATOR, "ko")
    assert store.standing("U1", 2).role is None and store.standing("U1").role is None
    store.add_admin("U1", "x")
    assert store.standing("U1", None) == Standing("U1", None, True, None, "ko")
    assert store.standing("U2", 1) == Standing("U2", 1, False, None, None)


def test_a_read_at_once_never_waits_and_never_writes(tmp_path):
    path = str(tmp_path / "now.db")
    store = SqliteStore(path, busy_seconds=0.2)
    store.grant("U1", 1, Role.OWNER, "x")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process writing
    try:
        assert store.read_now(store.role_of, "U1", 1) is Role.OWNER, "a read at once goes on beside a writer"
    finally:
        other.execute("ROLLBACK")
        other.close()
    with pytest.raises(WouldWait):
        store.read_now(store.grant, "U2", 1, Role.VIEWER, "x")
    assert store.role_of("U2", 1) is None
    held, go = threading.Event(), threading.Event()

    def hold():
        store.read_now(lambda: (held.set(), go.wait(5)))

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    try:
        with pytest.raises(WouldWait):  # its connection is in use: the caller reads in a thread instead
            store.read_now(store.role_of, "U1", 1)
    finally:
        go.set()
        holder.join()
    assert store.read_now(store.standing, "U1", 1).role is Role.OWNER
    store.close()


def test_postgres_is_never_read_at_once(pg_url):
    store = PgStore(pg_url)
    try:
        with pytest.raises(WouldWait):
            store.read_now(store.role_of, "U1", 1)
    finally:
        store.close()


def test_a_delete_another_bot_is_claiming_is_not_claimed_again_on_postgres(pg_url):
    """Two bots claim at the same moment: this one's claim waits on the other's row lock, and once the other
    commits its claim (sending), this one must not take the delete too (a second DELETE of a backup)."""
    import time

    import psycopg

    store = PgStore(pg_url)
    try:
        window = store.open_delete_window(**A_DELETE_WINDOW)  # due long ago
        claimed: dict = {}
        with psycopg.connect(pg_url) as other:  # the other bot, its claim not yet committed
            other.execute(
                "UPDATE delete_windows SET state = 'sending', claimed_until = %s WHERE id = %s",
                [time.time() + 120, window.id],
            )
            racing = threading.Thread(target=lambda: claimed.update(windows=store.claim_due_deletes()))
            racing.start()
            time.sleep(0.3)  # this bot's claim is now waiting for the other's row
            assert racing.is_alive(), "it waits for the row, as two bots claiming at once do"
            other.commit()
            racing.join(10)
        assert claimed == {"windows": []}, "claimed by the other bot already"
        assert store.delete_window(window.id).state is WindowState.SENDING
    finally:
        store.close()


def test_what_is_due_is_one_read_that_agrees_with_each_chores_query(store):
    """Each probe of due_work is true exactly when the query of its chore finds something (stale: 60 s)."""
    from datetime import UTC, datetime, timedelta

    now = [datetime(2026, 6, 1, tzinfo=UTC)]
    store._clock = lambda: now[0]
    assert store.due_work(60).now == frozenset()

    def approval(expires_at: float):
        return store.create_approval(
            action="delete",
            backup_id=1,
            server_id=1,
            server_name="s",
            target_server_id=1,
            target_server_name="s",
            backup_created_at="x",
            backup_type="manual",
            backup_description="",
            requested_by="U1",
            reason="",
            origin_channel=None,
            response_url=None,
            expires_at=expires_at,
            safety=0,
        )

    store.enqueue_announcement("C1", {"text": "later"}, after_seconds=30)
    store.open_delete_window(**{**A_DELETE_WINDOW, "due_at": now[0].timestamp() + 30})
    waiting = approval(now[0].timestamp() + 30)
    assert store.due_work(60) == DueWork(frozenset(), 30.0), "nothing is due yet: the earliest in 30 s"
    now[0] += timedelta(seconds=31)
    assert store.due_work(60).now == {"outbox", "due deletes", "expired approvals"}
    assert len(store.claim_due_announcements()) == 1 and len(store.claim_due_deletes()) == 1
    assert [r.id for r in store.expire_approvals()] == [waiting.id]
    assert store.due_work(60).now == frozenset(), "claimed: nothing left for anyone"
    now[0] += timedelta(seconds=121)
    assert store.due_work(60).now == {"outbox", "due deletes"}, "claims that lapsed are due again"
    (item,) = store.claim_due_announcements()
    (window,) = store.claim_due_deletes()
    store.announcement_sent(item.id)
    assert store.end_delete_window(window.id, WindowState.DONE)
    assert store.due_work(60).now == frozenset()

    assert store.due_work(60) == DueWork(frozenset(), None), "nothing left at all"
    approved = approval(now[0].timestamp() + 3600)
    assert store.due_work(60).next_in == 3600
    assert store.claim_approval(approved.id, "U2")
    assert store.due_work(60).next_in == 60, "approved: stale in 60 s, if nobody carries it out"
    chain = store.start_chain(
        backup_id=1,
        server_id=2,
        server_name="s",
        target_server_id=2,
        target_server_name="s",
        requested_by="U1",
        approved_by=None,
        channel_id=None,
        response_url=None,
        safety_backup_id=None,
    )
    store.follow(backup_id=9, server_id=1, requested_by="U1", channel_id=None, response_url=None)
    assert store.due_work(60).now == {"following"}
    now[0] += timedelta(seconds=61)
    assert store.due_work(60).now == {"stale approvals", "stale chains", "following"}
    assert store.stale_approvals(60) and store.stale_chains(60)
    store.end_approval(approved.id, ApprovalState.DONE)
    assert store.move_chain(chain.id, ChainState.CREATING, ChainState.WAITING, safety_backup_id=9)
    assert store.finish_follow(9, "completed")
    assert store.due_work(60).now == {"following"}, "a restore waiting on its safety backup is followed"
    assert store.move_chain(chain.id, ChainState.WAITING, ChainState.RESTORING)
    now[0] += timedelta(seconds=61)
    assert store.due_work(60).now == {"stale chains"}


def test_a_new_or_current_file_is_opened_without_loading_sqlite_utils(tmp_path):
    """sqlite-utils migrates files made by older versions; a bot on a new or current file never loads it (memory)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from bot.store import SqliteStore\n"
        f"SqliteStore({str(tmp_path / 'fresh.db')!r}).close()\n"
        f"SqliteStore({str(tmp_path / 'fresh.db')!r}).close()\n"
        "assert 'sqlite_utils' not in sys.modules, 'sqlite_utils was loaded'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


A_RUN = dict(
    id="0123456789ab",
    actor="token:deploy",
    server_id=12345,
    server_name=None,
    idempotency_key="build-7",
    request_hash="h",
    description="before deploy",
)


def test_two_bots_claim_a_pipeline_run_once_however_they_race(two):
    """The claim of a repeated Idempotency-Key is one INSERT ... ON CONFLICT DO NOTHING: one of any number wins."""
    one, other = two
    made, start = [], threading.Barrier(8)

    def claim(store):
        start.wait()
        made.append(store.claim_run(**A_RUN))

    threads = [threading.Thread(target=claim, args=(s,)) for s in (one, other) * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(new for _run, new in made) == [False] * 7 + [True]
    assert {run.id for run, _new in made} == {A_RUN["id"]} and all(r.status is RunStatus.PENDING for r, _ in made)
    moves = [s.move_run(A_RUN["id"], (RunStatus.PENDING,), RunStatus.IN_PROGRESS, backup_id=5033) for s in two]
    assert sorted(moves) == [False, True]
    one.follow(backup_id=5033, server_id=12345, requested_by="token:deploy", channel_id=None, response_url=None)
    assert other.pipeline_run(A_RUN["id"]).status is RunStatus.IN_PROGRESS
    one.finish_follow(5033, "failed")
    ended = other.pipeline_run(A_RUN["id"])
    assert (ended.status, ended.detail) == (RunStatus.FAILED, "backup #5033 ended failed"), "read from the follower"
    assert ended.finished_at is not None


def test_a_token_name_is_taken_once_and_revoked_once(two):
    one, other = two
    fields = dict(name="deploy", selector="0123456789ab", hash="ab" * 32, servers=[12346, 12345], made_by="cli:x")
    assert sorted([one.add_token(**fields), other.add_token(**fields)]) == [False, True]
    (token,) = other.tokens()
    assert token.servers == frozenset({12345, 12346}) and not token.revoked
    assert one.token_by_selector("0123456789ab").name == "deploy" and one.token_by_selector("x") is None
    assert sorted([one.revoke_token("deploy", "cli:x"), other.revoke_token("deploy", "cli:y")]) == [False, True]
    assert one.tokens()[0].revoked and not one.add_token(**fields), "a revoked token keeps its name"


def test_a_policy_slot_and_its_run_are_each_taken_once_however_bots_race(two):
    """Two guards, each enough alone: the slot claim on the policy, and the run's row unique per slot."""
    one, other = two
    one.save_policy(12345, {"cadence": "daily", "days": (), "at_time": "02:30", "zone": "UTC", "keep_last": 3}, "U1")
    slot = datetime(2026, 12, 3, 2, 30, tzinfo=UTC).timestamp()
    claims, runs, start = [], [], threading.Barrier(8)

    def race(store):
        start.wait()
        claims.append(store.claim_policy_slot(12345, slot))
        runs.append(store.start_policy_run(12345, slot, "scheduled", claim_seconds=180))

    threads = [threading.Thread(target=race, args=(s,)) for s in (one, other) * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(claims) == [False] * 7 + [True]
    made = [r for r in runs if r is not None]
    assert len(made) == 1 and made[0].tag == f"[policy r{made[0].id}]"
    assert not one.claim_policy_slot(12345, slot - 86400), "an older slot is passed by"
    assert one.claim_policy_runs(("creating",), 180) == [], "claimed by its maker until the claim lapses"
    assert other.move_policy_run(made[0].id, "creating", "running", backup_id=5033)
    assert not one.move_policy_run(made[0].id, "creating", "running", backup_id=5034), "moved once"
    (moved,) = one.claim_policy_runs(("running",), 180)
    assert moved.backup_id == 5033 and other.claim_policy_runs(("running",), 180) == []


def test_every_declared_unique_index_is_unique_in_sqlite(tmp_path):
    """An index of the same columns declared twice (once plain, once unique) must not leave only the plain one."""
    from bot.store.schema import TABLES

    store = SqliteStore(str(tmp_path / "u.db"))
    try:
        for table in TABLES:
            unique = [
                tuple(c[2] for c in store.db.execute(f"PRAGMA index_info('{row[1]}')"))
                for row in store.db.execute(f"PRAGMA index_list('{table.name}')")
                if row[2]
            ]
            for columns in table.unique:
                assert tuple(columns) in unique, (table.name, columns)
    finally:
        store.close()
