"""Durable writes: each caller awaits its own write, writes that arrive together are committed together."""

import asyncio
import sqlite3

import pytest

from bot.durable import DurableWrites
from bot.store import SqliteStore, StoreUnavailable


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(str(tmp_path / "durable.db"), busy_seconds=0.2)
    yield s
    s.close()


def entry(n: int, **extra) -> dict:
    return {"user_id": f"U{n}", "action": "list", "outcome": "done", "source": "slack", **extra}


def commits(store: SqliteStore) -> list[str]:
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    return statements


async def test_writes_that_arrive_together_are_one_transaction_and_each_caller_gets_its_own(store):
    durable = DurableWrites(store=store)
    statements = commits(store)
    ids = await asyncio.gather(*(durable.commit(store.audit, **entry(n)) for n in range(20)))
    assert sorted(ids) == list(range(1, 21)) and len(set(ids)) == 20
    assert [e.user_id for e in store.audit_entries(20)] == [f"U{n}" for n in reversed(range(20))], "in order"
    assert statements.count("COMMIT") <= 2, statements  # the first alone, the others in one group
    assert all(await asyncio.gather(*(durable.write("audit entry", store.audit, **entry(n)) for n in range(5))))


async def test_a_bad_write_in_a_group_costs_the_others_nothing(store):
    durable = DurableWrites(store=store)
    writes = [durable.commit(store.audit, **entry(n, outcome="done" if n != 3 else "nonsense")) for n in range(6)]
    outcomes = await asyncio.gather(*writes, return_exceptions=True)
    assert isinstance(outcomes[3], ValueError)
    assert [isinstance(o, int) for o in outcomes] == [True, True, True, False, True, True]
    assert len(store.audit_entries(10)) == 5


async def test_a_store_locked_by_another_process_fails_the_group_at_once_and_the_entries_are_kept(store, caplog):
    durable = DurableWrites(store=store, retry_seconds=0.05)
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        written = await asyncio.gather(*(durable.write("audit entry", store.audit, **entry(n)) for n in range(4)))
        assert written == [False] * 4 and durable.backlog == 4
    finally:
        other.execute("ROLLBACK")
        other.close()
    await durable.drain(5)
    assert [e.user_id for e in store.audit_entries(10)] == ["U3", "U2", "U1", "U0"], "kept, then written in order"


async def test_a_write_that_is_not_the_stores_goes_alone(store):
    durable = DurableWrites(store=store)
    seen = []
    assert await durable.write("note", lambda **fields: seen.append(fields), a=1)
    assert seen == [{"a": 1}]
    with pytest.raises(StoreUnavailable):
        await durable.commit(_unavailable)


def _unavailable() -> None:
    raise StoreUnavailable("busy")
