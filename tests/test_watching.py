"""Watching: status, alerts that heal themselves, and digests — driven as a user would, time moved by the Clock.

The simulator's backups are given chosen ages on the same ManualClock the bot reads; the watch round and
the digest chore are taken one step at a time (`run_chore`), as the background loop takes them.
"""

from datetime import UTC, datetime, timedelta

import pytest
from conftest import ADMIN, NOTIFY, Background, LiveStack, ManualClock, button, on_both, text_of
from test_cli import run

from bot.sim.fake_api import BackupSimulator
from bot.sim.slack_loopback import LoopbackSlack
from bot.slack import ids

VIEWER = "U0VIEWER"
DIGESTS = "C0DIGESTS"
START = datetime(2026, 12, 3, 0, 30, tzinfo=UTC)  # 09:30 in Seoul


def world(clock: ManualClock) -> BackupSimulator:
    """Three servers: 12345 backed up 2 hours ago (fresh), 12346 22 hours ago (due), 12347 30 hours ago (stale)."""
    sim = BackupSimulator(clock=clock, completion_seconds=600, seed=False)
    for server, name, hours in ((12345, "web-server-01", 2), (12346, "db-server-01", 22), (12347, "staging-01", 30)):
        sim.add_server(server, name)
        sim.add_backup(server, backup_type="automatic", age=timedelta(hours=hours))
        sim.add_backup(server, backup_type="manual", age=timedelta(hours=hours + 48))
    return sim


@pytest.fixture
def watched(tmp_path):
    clock = ManualClock(START)
    live = LiveStack(tmp_path / "watched.db", world(clock), clock=clock)
    yield live
    live.close()


def cards(stack, server: str = "staging-01") -> list[dict]:
    """The stale cards of one server."""
    return [m for m in stack.recorder.api("chat.postMessage") if f"No fresh backup of *{server}*" in m["text"]]


def step(stack, chore: str = "watch"):
    return stack.run(stack.runtime.background.run_chore(chore))


def test_status_says_fresh_due_and_stale_and_each_person_sees_their_servers(watched):
    reply, _ = watched.ask("status")
    text = text_of(reply)
    assert "*Backups of 3 servers*: 1 stale, 1 due, 1 fresh." in text
    assert text.index("staging-01") < text.index("db-server-01") < text.index("web-server-01"), "stale first"
    assert ":red_circle: *staging-01* (12347) — *stale*" in text and ":large_yellow_circle: *db-server-01*" in text
    assert "newest completed *#5005* (automatic), 1 day ago · manual 1 of 10 · stale after 26 hours" in text
    watched.runtime.store.grant(VIEWER, 12345, __import__("bot.policy").policy.Role.VIEWER, "test")
    mine, _ = watched.ask("status", user=VIEWER)
    assert "*Backups of 1 servers*" in text_of(mine) and "staging" not in text_of(mine), "only what they may see"
    nothing, _ = watched.ask("status 12347", user=VIEWER)
    assert "needs the *viewer* role" in text_of(nothing)


def test_a_stale_server_gets_one_card_a_reminder_then_the_same_card_says_it_recovered(watched):
    clock = watched.runtime.ops._clock
    step(watched)
    (card,) = cards(watched)
    assert card["channel"] == NOTIFY and "*No fresh backup of *staging-01* (12347)*" in card["text"]
    assert [b["text"]["text"] for b in card["blocks"][1]["elements"]] == ["Take a backup", "Status"]
    step(watched)
    assert len(cards(watched)) == 1, "one card while it stays stale"
    clock.now += timedelta(hours=12, minutes=1)
    step(watched)
    reminders = [m for m in watched.recorder.api("chat.postMessage") if m["text"].startswith(":red_circle: Reminder")]
    assert len(reminders) == 1 and "staging-01" in reminders[0]["text"]
    step(watched)
    assert len([m for m in watched.recorder.api("chat.postMessage") if "Reminder" in m["text"]]) == 1
    created, _ = watched.ask("create 12347 after the alert")
    watched.sim.finish(int(text_of(created).split("*#")[1].split("*")[0]))
    step(watched)
    (healed,) = watched.recorder.api("chat.update")
    assert healed["ts"] and healed["channel"] == NOTIFY, "the same card, edited in place"
    assert ":large_green_circle: *Recovered*" in text_of(healed) and "completed" in text_of(healed)
    assert not [b for b in healed["blocks"] if b["type"] == "actions"], "no buttons once healed"
    step(watched)
    assert len(cards(watched)) == 1 and len(watched.recorder.api("chat.update")) == 1


def test_the_cards_buttons_take_a_backup_and_show_the_status_for_whoever_presses(watched):
    step(watched)
    (card,) = cards(watched)
    _r, key = watched.press(button(card, ids.ALERT_CREATE), channel=NOTIFY)
    assert "has started" in text_of(watched.reply(key))
    _r, key = watched.press(button(card, ids.ALERT_STATUS), user=VIEWER, channel=NOTIFY)
    assert "needs the *viewer* role" in text_of(watched.reply(key)), "checked for whoever pressed"


def test_a_failed_backup_and_a_stuck_one_raise_cards_that_heal(tmp_path):
    clock = ManualClock(START)
    sim = world(clock)
    failed = sim.add_backup(12345, status="failed", age=timedelta(hours=1))
    stuck = sim.add_backup(12346, status="in_progress", age=timedelta(hours=7))
    live = LiveStack(tmp_path / "bad.db", sim, clock=clock)
    try:
        step(live)
        texts = [m["text"] for m in live.recorder.api("chat.postMessage")]
        assert any(f"*Backup #{failed} of web-server-01 (12345) FAILED* — it ended *failed*" in t for t in texts)
        assert any(f"*Backup #{stuck} of db-server-01 (12346) has been in progress since" in t for t in texts)
        sim.finish(stuck)
        created, _ = live.ask("create 12345")
        sim.finish(int(text_of(created).split("*#")[1].split("*")[0]))
        step(live)
        healed = [text_of(m) for m in live.recorder.api("chat.update")]
        assert len(healed) == 2 and all(":large_green_circle: *Recovered*" in t for t in healed)
        assert any("it ended *completed*" in t for t in healed), "the stuck backup ended"
    finally:
        live.close()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("digest <#C0DIGESTS|d> daily 25:00", "`25:00` is not a time"),
        ("digest <#C0DIGESTS|d> daily", "something is missing"),
        ("digest <#C0DIGESTS|d> daily 09:00 Mars/Base", "`Mars/Base` is not a time zone"),
        ("digest <#C0DIGESTS|d> weekly funday 09:00", "`funday` is not a day"),
        ("policy 12345 stale 0", "`0` is not a number of hours from 1 to 8760"),
        ("policy 12345 stale 10000", "`10000` is not a number of hours"),
        ("status web", "`web` is not a server ID"),
    ],
)
def test_bad_input_says_what_to_type_and_saves_nothing(watched, text, said):
    response, _ = watched.command(text)
    answer = text_of(response.json())
    assert said in answer and "Usage:" in answer
    assert watched.runtime.store.digests() == [] and watched.runtime.store.stale_hours() == {}


def test_a_digest_in_a_channel_the_bot_cannot_post_in_is_not_set(watched):
    watched.slack.fail("chat.postMessage", "channel_not_found")
    reply, _ = watched.ask(f"digest <#{DIGESTS}|d> daily 09:00")
    assert "so no digest was set there: there is no such channel" in text_of(reply)
    assert watched.runtime.store.digests() == []


def test_a_servers_own_threshold_is_set_by_its_owner_and_changes_its_state(watched):
    reply, _ = watched.ask("policy 12346 stale 20")
    assert "older than 20 hours (was the default, 26)" in text_of(reply)
    status, _ = watched.ask("status 12346")
    assert "— *stale*" in text_of(status) and "stale after 20 hours" in text_of(status)


def test_a_daily_digest_goes_out_once_at_its_time_and_a_missed_one_once_late(watched):
    clock = watched.runtime.ops._clock
    reply, _ = watched.ask(f"digest <#{DIGESTS}|digests> daily 09:00 Asia/Seoul")
    assert "gets a digest daily at 09:00 (Asia/Seoul)" in text_of(reply)
    hello = watched.recorder.api("chat.postMessage")[-1]
    assert hello["channel"] == DIGESTS and "now gets a backup digest" in hello["text"]

    def digests():
        return [m for m in watched.recorder.api("chat.postMessage") if m["channel"] == DIGESTS][1:]

    assert step(watched, "digests") == 0, "09:30 today has passed: the first is tomorrow at 09:00"
    clock.now = datetime(2026, 12, 4, 0, 0, 30, tzinfo=UTC)  # 09:00:30 in Seoul
    assert step(watched, "digests") == 1
    assert step(watched, "digests") == 0, "once per period"
    (first,) = digests()
    assert "*Backup digest* for" in text_of(first) and "2 stale, 1 due, 0 fresh of 3 servers" in text_of(first)
    assert "No fresh backup of *staging-01*" not in text_of(first) and "no fresh backup" in text_of(first)
    assert "Late" not in text_of(first)
    clock.now = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)  # the bot was down for three of them
    assert step(watched, "digests") == 1 and step(watched, "digests") == 0
    late = digests()[-1]
    assert len(digests()) == 2, "not a burst of the missed ones"
    assert ":warning: Late: the bot was not running at" in text_of(late)


def test_two_bots_on_one_postgres_send_each_alert_and_each_digest_once(tmp_path, pg_url):
    clock = ManualClock(START)
    sim = world(clock)
    bg = Background()
    slack = bg.run(LoopbackSlack().start())
    first = LiveStack(pg_url, sim, clock=clock, slack=slack)
    second = LiveStack(pg_url, sim, clock=clock, slack=slack)
    try:
        first.ask(f"digest <#{DIGESTS}|digests> daily 09:00 Asia/Seoul")
        clock.now = datetime(2026, 12, 4, 0, 1, tzinfo=UTC)
        for _ in range(3):
            bg.run(on_both(first, second, "watch"))
            bg.run(on_both(first, second, "digests"))
        posts = slack.recorder.api("chat.postMessage")
        assert len([m for m in posts if "No fresh backup of *staging-01*" in m["text"]]) == 1
        assert len([m for m in posts if "No fresh backup of *db-server-01*" in m["text"]]) == 1
        assert len([m for m in posts if m["channel"] == DIGESTS and "Backup digest" in m["text"]]) == 1
    finally:
        first.close()
        second.close()
        bg.run(slack.stop())
        bg.close()


def test_a_card_slack_held_back_is_posted_after_a_restart_and_not_doubled(tmp_path):
    clock = ManualClock(START)
    sim = world(clock)
    bg = Background()
    slack = bg.run(LoopbackSlack().start())
    db = tmp_path / "restart.db"

    def posted():
        return [m for m in slack.recorder.api("chat.postMessage") if "No fresh backup of *staging-01*" in m["text"]]

    try:
        slack.rate_limit("chat.postMessage", times=1, retry_after=30)
        first = LiveStack(db, sim, clock=clock, slack=slack)  # its first watch round opens the alert
        step(first)
        first.close()
        assert len(posted()) == 1, "refused once by Slack: kept in the outbox"
        clock.now += timedelta(seconds=31)
        second = LiveStack(db, sim, clock=clock, slack=slack)
        try:
            second.recorder.wait_for(lambda _r: len(posted()) == 2)
            step(second)
            assert len(posted()) == 2, "delivered once after the restart, never opened again"
        finally:
            second.close()
    finally:
        bg.run(slack.stop())
        bg.close()


def test_the_shell_status_exits_non_zero_while_a_server_is_stale(tmp_path):
    from bot.sim.fake_api import start_simulator_server

    bg = Background()
    sim = BackupSimulator(completion_seconds=3600)
    runner, url = bg.run(start_simulator_server(sim))
    env = {"VPS_API_URL": url, "VPS_API_TOKEN": "t"}
    try:
        fresh = run("status", tmp_path=tmp_path, env=env)
        assert fresh.returncode == 0, fresh.stdout + fresh.stderr
        assert "12345  web-server-01" in fresh.stdout and "fresh" in fresh.stdout
        stale = run("status", tmp_path=tmp_path, env={**env, "BACKUPBOT_STALE_HOURS": "1"})
        assert stale.returncode == 1 and "stale" in stale.stdout
        one = run("status", "12347", tmp_path=tmp_path, env=env)
        assert one.returncode == 0 and one.stdout.count("\n") == 1
    finally:
        bg.run(runner.cleanup())
        bg.close()


def test_admin_is_needed_for_a_digest(watched):
    watched.runtime.store.grant(VIEWER, 12345, __import__("bot.policy").policy.Role.OWNER, "test")
    reply, _ = watched.ask(f"digest <#{DIGESTS}|d> daily 09:00", user=VIEWER)
    assert "Only an admin may set a digest." in text_of(reply)
    assert ADMIN not in text_of(reply)
