"""Following created backups to the end: with a controlled clock, and live through the whole bot."""

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from conftest import NOTIFY, LiveStack, ManualClock, text_of

from bot.backup_api import BackupApi
from bot.chores import Background, Chore
from bot.follower import Follower
from bot.sim.fake_api import BackupSimulator, SimulatorTransport
from bot.store import SqliteStore


class Reports:
    """Records what the follower reports (the Reporter protocol, at the edge)."""

    def __init__(self):
        self.finished, self.ended, self.alerts = [], [], []

    async def backup_finished(self, followed, backup, manual_count):
        self.finished.append((followed.backup_id, backup.status, backup.size_mb, manual_count))

    async def follow_ended(self, followed, why):
        self.ended.append((followed.backup_id, why))

    async def alert_changed(self, change):
        self.alerts.append((change.event, change.alert.kind, change.alert.subject_id))


@pytest.fixture
def world(store):
    clock = ManualClock()
    sim = BackupSimulator(clock=clock, completion_seconds=600)
    api = BackupApi("http://sim/api/v1", "t", transport=SimulatorTransport(sim), backoff_seconds=0, read_attempts=1)
    reports = Reports()
    follower = Follower(api, store, reports, clock=clock)
    return SimpleNamespace(clock=clock, sim=sim, api=api, store=store, reports=reports, follower=follower)


async def create(api, store, server_id, user="U0ME"):
    backup = await api.create_backup(server_id)
    store.follow(backup_id=backup.id, server_id=server_id, requested_by=user, channel_id="C1", response_url=None)
    return backup


async def test_completion_is_reported_once_with_size(world):
    w = world
    backup = await create(w.api, w.store, 12345)
    assert await w.follower.poll_once() is True
    assert w.reports.finished == []
    w.clock.now += timedelta(seconds=601)
    await w.follower.poll_once()
    await w.follower.poll_once()
    assert len(w.reports.finished) == 1
    backup_id, status, size, manual = w.reports.finished[0]
    assert (backup_id, status, manual) == (backup.id, "completed", 3) and size > 0
    assert w.store.following() == []


async def test_failed_backup_is_reported_as_its_status(world):
    w = world
    backup = await create(w.api, w.store, 12345)
    w.sim.end_with(backup.id, "failed")
    w.clock.now += timedelta(seconds=601)
    await w.follower.poll_once()
    assert w.reports.finished == [(backup.id, "failed", None, 3)]


async def test_one_list_call_per_server_per_round(world):
    w = world
    for server_id in (12345, 12345, 12345, 12347, 12347):
        await create(w.api, w.store, server_id)
    before = w.sim.count("GET")
    await w.follower.poll_once()
    assert w.sim.count("GET") - before == 2
    assert sorted(p for m, p in w.sim.requests[-2:]) == ["/api/v1/backups/", "/api/v1/backups/"]


async def test_vanished_and_given_up(world):
    w = world
    w.sim.completion_seconds = 10**9
    gone = await create(w.api, w.store, 12345)
    slow = await create(w.api, w.store, 12347)
    w.sim.remove(gone.id)
    await w.follower.poll_once()
    assert w.reports.ended[0][0] == gone.id and "no longer in the backup API's list" in str(w.reports.ended[0][1])
    w.clock.now += timedelta(hours=5)
    await w.follower.poll_once()
    assert len(w.reports.ended) == 1
    w.clock.now += timedelta(hours=1, seconds=1)
    await w.follower.poll_once()
    assert w.reports.ended[1][0] == slow.id and "still in progress after 6 hours" in str(w.reports.ended[1][1])
    assert w.store.following() == [] and w.reports.finished == []


async def test_racing_rounds_report_once(world):
    w = world
    await create(w.api, w.store, 12345)
    w.clock.now += timedelta(seconds=601)
    other = Follower(w.api, w.store, w.reports, clock=w.clock)
    await asyncio.gather(w.follower.poll_once(), other.poll_once(), w.follower.poll_once())
    assert len(w.reports.finished) == 1


async def test_rounds_back_off_while_the_api_fails(world):
    """In the background loop, a follow round that finds the API failing waits twice as long, up to the cap."""
    w = world
    await create(w.api, w.store, 12345)
    now, rounds = [0.0], []

    async def sleep(seconds):
        now[0] += seconds
        if len(rounds) == 7:
            raise asyncio.CancelledError

    async def follow():
        rounds.append(now[0])
        return await w.follower.poll_once()

    chores = [Chore("follow", follow, 30, leader_only=True, backoff=True)]
    loop = Background(w.store, chores, tick=1, max_backoff_seconds=200, sleep=sleep, monotonic=lambda: now[0])
    w.sim.fail_next(4, 503)
    with pytest.raises(asyncio.CancelledError):
        await loop.run()
    assert [b - a for a, b in itertools.pairwise(rounds)] == [60, 120, 200, 200, 30, 30]


async def test_the_loop_stops_even_if_a_chore_swallowed_the_cancellation(tmp_path):
    store = SqliteStore(str(tmp_path / "stubborn.db"))
    started, swallowed = asyncio.Event(), []

    async def stubborn():
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed.append(True)  # once, as Python 3.11's asyncio.wait_for can when what it waits for ends then

    loop = Background(store, [Chore("stubborn", stubborn)], tick=0.01)
    task = loop.start()
    await started.wait()
    stopping = asyncio.ensure_future(loop.stop())
    await asyncio.wait([stopping], timeout=5)
    assert stopping.done() and task.done(), "stopped, though the chore swallowed the cancellation"
    store.close()


async def test_an_idle_loop_reads_once_in_a_while_and_new_work_wakes_it(tmp_path):
    from datetime import UTC, datetime

    from bot.chores import SWEEP_SECONDS

    now, ran = [0.0], []
    store = SqliteStore(str(tmp_path / "idle.db"), clock=lambda: datetime.fromtimestamp(1e9 + now[0], UTC))

    def chore(name):
        async def run():
            ran.append(name)

        return run

    chores = [
        Chore("kept messages", chore("kept messages"), due="outbox"),
        Chore("due deletes", chore("due deletes"), due="due deletes"),
        Chore("always", chore("always")),
    ]
    loop = Background(store, chores, tick=1, idle_seconds=10, monotonic=lambda: now[0])
    loop._loop = asyncio.get_running_loop()  # as start() does: woken by new work
    store.on_new_work(loop.wake)

    async def tick(seconds: float = 1) -> list[str]:
        ran.clear()
        now[0] += seconds
        await loop.run_once()
        return list(ran)

    await loop.run_once()
    assert ran == ["kept messages", "due deletes", "always"], "the first pass runs every chore"
    reads = []
    store.due_work = lambda stale: reads.append(stale) or SqliteStore.due_work(store, stale)
    assert [await tick() for _ in range(20)].count(["always"]) == 20, "nothing due: the probed chores wait"
    assert len(reads) == 2, "one read every idle_seconds"
    store.enqueue_announcement("C1", {"text": "hi"})
    await asyncio.sleep(0)  # the wake-up, from the thread that wrote (here: this one)
    assert await tick() == ["kept messages", "always"], "new work wakes the loop"
    store.claim_due_announcements(claim_seconds=3)  # sent, say, by the bot that kept it... which then died
    assert await tick() == ["always"]
    assert [await tick() for _ in range(3)][-1] == ["kept messages", "always"], "looked at when its claim lapses"
    store.claim_due_announcements(claim_seconds=3600)
    await tick()
    assert await tick(SWEEP_SECONDS) == ["kept messages", "due deletes", "always"], "a sweep runs every chore"
    store.close()


async def test_quota_news_counts_manual_backups(world):
    w = world
    await create(w.api, w.store, 12346)
    w.clock.now += timedelta(seconds=601)
    await w.follower.poll_once()
    assert w.reports.finished[0][3] == 9


# --- live, through the whole bot ------------------------------------------------


@pytest.fixture
def quick(tmp_path):
    sim = BackupSimulator(completion_seconds=0.3)
    live = LiveStack(tmp_path / "quick.db", sim, poll_seconds=0.1)
    yield live
    live.close()


def announcements(stack):
    return [m["text"] for m in stack.recorder.api("chat.postMessage")]


def test_completion_updates_the_reply_in_place_and_announces(quick):
    _, key = quick.ask("create 12346 Before the migration")
    updated = quick.reply(key, 2)
    assert updated["replace_original"] is True
    assert ":white_check_mark: Backup *#5033* is complete" in text_of(updated)
    done = quick.recorder.wait_for(lambda _r: [t for t in announcements(quick) if "is complete" in t])
    assert "asked for by <@UADMIN01>" in done[0]
    assert "*9 of 10* manual backups: one more fits." in done[0]
    assert quick.recorder.api("chat.postMessage")[-1]["channel"] == NOTIFY


def test_failed_backup_is_announced_loudly(quick):
    quick.sim.completion_seconds = 0.5
    _, key = quick.ask("create 12345")
    quick.sim.end_with(5033, "failed")
    updated = quick.reply(key, 2)
    assert "ended *failed*: it is *not* usable" in text_of(updated)
    loud = quick.recorder.wait_for(lambda _r: [t for t in announcements(quick) if "FAILED" in t])
    assert loud[0].startswith(":rotating_light: *Backup #5033 of web-server-01 (12345) FAILED* — it ended *failed*")


def test_restart_in_the_middle_still_announces_exactly_once(tmp_path):
    """The bot stops while a backup runs; it finishes meanwhile; two bots start on the same store."""
    from conftest import Background

    from bot.sim.slack_loopback import LoopbackSlack

    bg = Background()
    slack = bg.run(LoopbackSlack().start())
    sim = BackupSimulator(completion_seconds=3600)
    db = tmp_path / "restart.db"
    first = LiveStack(db, sim, slack=slack)
    _, key = first.ask("create 12345 deploy")
    first.close()
    sim.finish(5033, "completed", size_mb=5120)
    second = LiveStack(db, sim, poll_seconds=0.05, slack=slack)
    third = LiveStack(db, sim, poll_seconds=0.05, slack=slack)
    try:
        done = slack.recorder.wait_for(lambda _r: [t for t in announcements(second) if "is complete" in t])
        assert "Backup *#5033* of *web-server-01* (12345) is complete (5.0 GB)" in done[0]
        second.recorder.wait_for(lambda _r: len(slack.recorder.responses(key)) >= 2)
        for bot in (second, third):
            assert bot.run(bot.runtime.background.run_chore("follow")) is True, (
                "another round finds nothing left to report"
            )
        assert len([t for t in announcements(second) if "is complete" in t]) == 1, "announced exactly once"
        updates = slack.recorder.responses(key)
        assert len(updates) == 2 and "is complete (5.0 GB)" in text_of(updates[1])
    finally:
        second.close()
        third.close()
        bg.run(slack.stop())
        bg.close()


async def test_a_leader_renews_its_lease_before_it_lapses_so_no_other_bot_takes_over(tmp_path):
    """Two bots on one store, their loops and the store on one clock moved a second a tick: the first to ask
    leads, renews well within the lease, and the other never gets it; when the leader stops, the other does."""
    now = [0.0]
    path = str(tmp_path / "lease.db")
    stores = [SqliteStore(path, clock=lambda: datetime.fromtimestamp(1e9 + now[0], UTC)) for _ in range(2)]
    first, second = (Background(s, [], tick=1, lease_seconds=9, monotonic=lambda: now[0]) for s in stores)
    await first.run_once()
    await second.run_once()
    assert (first.leading, second.leading) == (True, False)
    for _ in range(40):
        now[0] += 1
        await first.run_once()
        await second.run_once()
        assert (first.leading, second.leading) == (True, False), f"at {now[0]} s"
    await first.stop()
    for _ in range(3):
        now[0] += 1
        await second.run_once()
    assert second.leading, "the lease let go at stop is taken at once"
    for store in stores:
        store.close()
