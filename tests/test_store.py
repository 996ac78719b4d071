"""The store on real SQLite files."""

import sqlite3
import threading

import pytest

from bot.policy import Role
from bot.store import Store


def test_schema_is_created_idempotently_in_wal_mode(tmp_path):
    path = str(tmp_path / "s.db")
    Store(path).close()
    again = Store(path)
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"grants", "admins", "audit", "servers", "followed", "confirmations"} <= set(again.db.table_names())
    again.close()


def test_a_second_connection_sees_a_grant_at_once(tmp_path):
    path = str(tmp_path / "shared.db")
    serve, cli = Store(path), Store(path)
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
    conf = store.create_confirmation(
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
    assert conf.state == "pending" and len(conf.id) >= 16
    assert store.consume_confirmation(conf.id, state="used", used_by="U2") is True
    assert store.consume_confirmation(conf.id, state="used", used_by="U3") is False
    assert store.confirmation(conf.id).used_by == "U2"
    assert store.confirmation("nope") is None


def test_server_names_learned(store):
    store.learn_servers([(1, "one"), (2, "two"), (1, "uno")])
    assert store.server_names() == {1: "uno", 2: "two"}


def test_migration_leaves_existing_data(tmp_path):
    path = str(tmp_path / "m.db")
    s = Store(path)
    s.grant("U1", 1, Role.OWNER, "x")
    s.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 2
    raw.close()
    assert Store(path).role_of("U1", 1) is Role.OWNER


def test_notice_is_true_only_the_first_time(store):
    assert store.notice(5001) is True
    assert store.notice(5001) is False
