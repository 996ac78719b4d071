"""Backup policies, driven as a user would: `/backup policy` through signed requests, the background loop's
chores taken one step at a time on the ManualClock the bot and the simulator both read, a real `serve`
killed mid-create, two bots on one PostgreSQL.
"""

import contextlib
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import pytest
from conftest import NOTIFY, Background, LiveStack, ManualClock, button, on_both, poll_until, text_of
from test_server import ServeProcess, audit_rows
from test_writes import kill_when_handled, restarted

from bot.sim.fake_api import BackupSimulator
from bot.sim.slack_loopback import LoopbackSlack, view_submission_payload
from bot.slack import ids

OWNER = "U0OWNER"
OWNER2 = "U0OWNER2"
VIEWER = "U0VIEWER"
START = datetime(2026, 12, 3, 0, 0, tzinfo=UTC)
TAG = re.compile(r"\[policy r[0-9a-f]{8}\]$")


def stamp(*parts) -> int:
    """A moment as Slack's <!date^…> carries it."""
    return int(datetime(*parts, tzinfo=UTC).timestamp())


def world(clock: ManualClock) -> BackupSimulator:
    """12345 with two manual backups of its own and an automatic one; 12346 with one manual."""
    sim = BackupSimulator(clock=clock, completion_seconds=600, seed=False)
    sim.add_server(12345, "web-01")
    sim.add_server(12346, "db-01")
    sim.add_backup(12345, backup_type="automatic", age=timedelta(hours=5))
    sim.add_backup(12345, age=timedelta(days=20), description="before the migration")
    sim.add_backup(12345, age=timedelta(days=10), description="release 2.3")
    sim.add_backup(12346, age=timedelta(days=3), description="db before vacuum")
    return sim


@pytest.fixture
def live(tmp_path):
    clock = ManualClock(START)
    stack = LiveStack(tmp_path / "policies.db", world(clock), clock=clock)
    stack.grant(OWNER, 12345, "owner")
    stack.grant(OWNER2, 12345, "owner")
    stack.grant(VIEWER, 12345, "viewer")
    yield stack
    stack.close()


def step(stack, chore: str = "policies"):
    return stack.run(stack.runtime.background.run_chore(chore))


def at(stack, moment: datetime, *chores: str) -> None:
    """Move the clock to `moment` and take each chore once (the policies chore if none given)."""
    stack.runtime.ops._clock.now = moment
    for chore in chores or ("policies",):
        step(stack, chore)


def policy_backups(sim: BackupSimulator, server: int = 12345) -> list:
    return sorted(
        (b for b in sim._backups.values() if b.server_id == server and TAG.search(b.description)), key=lambda b: b.id
    )


def posted(stack, needle: str) -> list[dict]:
    return [m for m in stack.recorder.api("chat.postMessage") if needle in m["text"]]


# --- setting and reading ---------------------------------------------------------------------------


def test_a_policy_set_in_slack_runs_at_its_local_time_exactly_once(live):
    reply, _ = live.ask("policy 12345 daily 02:30 Europe/Berlin keep last 3", user=OWNER)
    text = text_of(reply)
    assert ":white_check_mark: Policy saved." in text
    assert "*Backup policy of web-01 (12345)*: daily at 02:30 (Europe/Berlin), keep the last 3 backups." in text
    assert f"• 2026-12-03 02:30 Europe/Berlin (<!date^{stamp(2026, 12, 3, 1, 30)}^" in text, "named in its zone"
    assert "room for a keep of 5" in text, "10 - 2 reserved - 2 other manual - 1"
    (told,) = posted(live, "set the backup policy of")
    assert told["channel"] == NOTIFY and "<@U0OWNER> set the backup policy of *web-01* (12345)" in told["text"]
    at(live, datetime(2026, 12, 3, 1, 29, tzinfo=UTC))  # 02:29 in Berlin
    assert live.sim.count("POST") == 0
    for _ in range(3):
        at(live, datetime(2026, 12, 3, 1, 30, 20, tzinfo=UTC))
    assert live.sim.count("POST") == 1, "once, however often the loop looks"
    (made,) = policy_backups(live.sim)
    assert made.created_at == datetime(2026, 12, 3, 1, 30, 20, tzinfo=UTC)
    assert made.description.startswith("Scheduled backup [policy r")
    (create,) = [e for e in live.runtime.store.audit_entries(50) if e.action == "create"]
    assert (create.user_id, create.outcome, create.source) == ("policy:12345", "done", "policy")
    assert "of the policy set by U0OWNER" in create.detail
    assert not posted(live, "took backup"), "success is quiet"
    at(live, datetime(2026, 12, 3, 1, 41, tzinfo=UTC), "policy runs")
    shown, _ = live.ask("policy 12345", user=VIEWER)
    last = f"<!date^{stamp(2026, 12, 3, 1, 30)}^{{date_short_pretty}} {{time}}|2026-12-03 01:30 UTC>"
    assert f"*Last run*: 2026-12-03 02:30 Europe/Berlin ({last}): completed (backup *#{made.id}*)" in text_of(shown)


def test_the_same_policy_across_a_restart_runs_each_slot_once(tmp_path):
    clock = ManualClock(START)
    sim = world(clock)
    slack = Background()
    loopback = slack.run(LoopbackSlack().start())
    try:
        first = LiveStack(tmp_path / "r.db", sim, clock=clock, slack=loopback)
        first.ask("policy 12345 daily 02:30 UTC")
        at(first, datetime(2026, 12, 3, 2, 31, tzinfo=UTC))
        first.close()
        second = LiveStack(tmp_path / "r.db", sim, clock=clock, slack=loopback)
        try:
            at(second, datetime(2026, 12, 3, 2, 40, tzinfo=UTC), "policies", "policy runs")
            assert sim.count("POST") == 1, "the restarted bot does not take the slot again"
            at(second, datetime(2026, 12, 4, 2, 30, 30, tzinfo=UTC))
            assert sim.count("POST") == 2, "and takes the next one"
        finally:
            second.close()
    finally:
        slack.run(loopback.stop())
        slack.close()


def test_bad_input_says_what_to_type_and_changes_nothing(live):
    for text, said in [
        ("policy 12345 daily 3am", "`3am` is not a time: write it on a 24-hour clock, like 02:30"),
        ("policy 12345 every 5h", "`5h` is not a period I can keep: every 1h, 2h, 3h, 4h, 6h, 8h, 12h or 24h"),
        ("policy 12345 keep last 0", "`keep last` takes a number from 1 to 9, not `0`"),
        ("policy 12345 keep last 50", "`keep last` takes a number from 1 to 9, not `50`"),
        ("policy 12345 daily 02:00 Mars/Base", "`Mars/Base` is not a time zone: use an IANA name"),
        ("policy 12345 pause for 30d", "`30d` is not a pause I take: from 1h to 7d (168h)"),
        ("pin 12345x", "is not"),
    ]:
        response, _ = live.command(text, user=OWNER)
        body = response.json()
        assert said in text_of(body), text
        assert "Usage: `/backup" in text_of(body), "what to type instead"
    assert live.runtime.store.policy(12345) is None and live.runtime.store.pins(12345) == set()


def test_pins_are_for_manual_backups_of_ones_own_servers(live):
    automatic = min(b.id for b in live.sim._backups.values() if b.backup_type == "automatic")
    reply, _ = live.ask(f"pin {automatic}", user=OWNER)
    assert f"Backup *#{automatic}* is automatic" in text_of(reply) and "Nothing was changed." in text_of(reply)
    theirs = next(b.id for b in live.sim._backups.values() if b.server_id == 12346)
    reply, _ = live.ask(f"pin {theirs}", user=OWNER)
    assert f"#{theirs}" in text_of(reply) and "pinned" not in text_of(reply), "another server's: as if there were none"
    reply, _ = live.ask("pin 5002", user=VIEWER)
    assert "needs the *owner* role" in text_of(reply)
    assert live.runtime.store.pins(12345) == set() and live.runtime.store.pins(12346) == set()
    reply, _ = live.ask("pin 5002", user=OWNER)
    assert ":pushpin: Backup *#5002* of *web-01* (12345) is pinned" in text_of(reply)
    assert live.runtime.store.pins(12345) == {5002}


def test_a_viewer_reads_a_policy_but_only_an_owner_sets_it(live):
    live.ask("policy 12345 daily 02:00", user=OWNER)
    reply, _ = live.ask("policy 12345 keep last 2", user=VIEWER)
    assert "needs the *owner* role" in text_of(reply)
    reply, _ = live.ask("policies", user=VIEWER)
    assert "*1 backup policy*" in text_of(reply) and "Next run" in text_of(reply)
    denied = [e for e in live.runtime.store.audit_entries(50) if e.outcome == "denied"]
    assert denied and denied[0].user_id == VIEWER


def test_a_keep_that_does_not_fit_is_refused_with_the_arithmetic(live):
    for days in range(4):
        live.sim.add_backup(12345, age=timedelta(days=days + 1), description=f"ad hoc {days}")
    reply, _ = live.ask("policy 12345 daily 02:00 keep last 3", user=OWNER)
    assert (
        ":no_entry: That keeps 3 backups, but server *12345* has room for 1: 10 manual slots − 2 kept free − "
        "6 other manual backups − 1 for the next backup = 1. Nothing was changed."
    ) in text_of(reply)
    assert live.runtime.store.policy(12345) is None
    (failed,) = [e for e in live.runtime.store.audit_entries(50) if e.action == "policy" and e.outcome == "failed"]
    assert failed.detail == "keep last 3 does not fit: 10 - 2 reserved - 6 other - 1 = 1"


# --- retention -----------------------------------------------------------------------------------------


def test_retention_prunes_only_its_own_after_a_run_completes_and_the_preview_said_so(live):
    live.ask("policy 12345 daily 02:30 UTC keep last 2", user=OWNER)
    made = []
    for day in range(3):
        slot = datetime(2026, 12, 3 + day, 2, 30, 5, tzinfo=UTC)
        at(live, slot)
        at(live, slot + timedelta(minutes=11), "policy runs")
        made.append(policy_backups(live.sim)[-1].id)
    assert [b.id for b in policy_backups(live.sim)] == made[-2:], "keep last 2: the oldest of its own went"
    shown, _ = live.ask("policy 12345", user=OWNER)
    said = re.search(r"After the next run completes, I would delete \*#(\d+)\*\.", text_of(shown))
    assert said and int(said.group(1)) == made[1], "the preview names what the next prune deletes"
    slot = datetime(2026, 12, 6, 2, 30, 5, tzinfo=UTC)
    at(live, slot)
    at(live, slot + timedelta(minutes=11), "policy runs")
    assert int(said.group(1)) not in live.sim._backups, "and that is what it deleted"
    others = {b.id for b in live.sim._backups.values() if b.server_id == 12345 and not TAG.search(b.description)}
    assert len(others) == 3, "the automatic one and the two other manual ones are untouched"
    deletes = [e for e in live.runtime.store.audit_entries(50) if e.action == "delete"]
    assert len(deletes) == 2 and all(e.user_id == "policy:12345" and e.outcome == "done" for e in deletes)
    assert all("pruned by the policy set by U0OWNER (keep last 2)" in e.detail for e in deletes)
    assert live.sim.count("DELETE") == 2


def test_a_pinned_backup_of_its_own_is_never_pruned(live):
    live.ask("policy 12345 daily 02:30 UTC keep last 1", user=OWNER)
    slot = datetime(2026, 12, 3, 2, 30, 5, tzinfo=UTC)
    at(live, slot)
    at(live, slot + timedelta(minutes=11), "policy runs")
    (first,) = policy_backups(live.sim)
    live.ask(f"pin {first.id}", user=OWNER)
    for day in (4, 5):
        slot = datetime(2026, 12, day, 2, 30, 5, tzinfo=UTC)
        at(live, slot)
        at(live, slot + timedelta(minutes=11), "policy runs")
    ids_left = [b.id for b in policy_backups(live.sim)]
    assert first.id in ids_left and len(ids_left) == 2, "the pinned one and the newest"


def test_a_lower_keep_under_the_two_person_rule_needs_a_second_owner(live):
    live.ask("approvals 12345 on")
    live.ask("policy 12345 daily 02:00 keep last 4", user=OWNER)
    waiting, _ = live.ask("policy 12345 keep last 2", user=OWNER)
    assert (
        "Your request to lower the backup policy's keep of *web-01* (12345) from “keep the last 4 backups” to “keep the last 2 backups” needs a second person's approval"
        in text_of(waiting)
    )
    assert live.runtime.store.policy(12345).keep_last == 4, "nothing changed yet"
    card = live.recorder.wait_for(
        lambda _r: [
            m
            for m in live.recorder.api("chat.postMessage")
            if "Approval needed" in m["text"] or "asks to lower" in text_of(m)
        ]
    )[-1]
    live.press(button(card, ids.APPROVE), user=OWNER2, channel=NOTIFY)
    poll_until(lambda: live.runtime.store.policy(12345).keep_last == 2)
    updated = live.recorder.wait_for(lambda _r: live.recorder.api("chat.update"))[-1]
    assert "*Approved* by <@U0OWNER2> — the new keep is in force." in text_of(updated)
    (saved,) = [
        e for e in live.runtime.store.audit_entries(50) if "approved by U0OWNER2" in e.detail and e.action == "policy"
    ]
    assert saved.user_id == OWNER and "keep last 4" in saved.detail and "keep last 2" in saved.detail
    higher, _ = live.ask("policy 12345 keep last 3", user=OWNER)
    assert "Policy saved" in text_of(higher), "a higher keep deletes less: no approval"


# --- runs that go wrong ---------------------------------------------------------------------------------


def test_missed_slots_run_once_within_the_window_and_the_rest_raise_one_alert(live):
    live.ask("policy 12345 daily 02:30 UTC", user=OWNER)
    at(live, datetime(2026, 12, 4, 3, 45, tzinfo=UTC))  # down since before the 3rd's slot; the 4th's is 75 min late
    at(live, datetime(2026, 12, 4, 3, 46, tzinfo=UTC))
    assert live.sim.count("POST") == 0, "past its start window: not run late"
    (card,) = posted(live, "were missed")
    first, last = stamp(2026, 12, 3, 2, 30), stamp(2026, 12, 4, 2, 30)
    assert f"*2 scheduled backups of web-01 (12345) were missed*, from <!date^{first}^" in card["text"]
    assert f"to <!date^{last}^" in card["text"]
    at(live, datetime(2026, 12, 6, 2, 50, tzinfo=UTC))  # down again: the 5th's missed, the 6th's 20 min late
    at(live, datetime(2026, 12, 6, 2, 51, tzinfo=UTC))
    assert live.sim.count("POST") == 1, "one catch-up within the window, never a burst"
    runs = live.runtime.store.policy_runs_of(12345, 10)
    assert [r.state for r in runs] == ["running", "missed", "missed", "missed"]
    assert len(posted(live, "were missed")) == 1, "one alert while it stays open"
    at(live, datetime(2026, 12, 6, 3, 1, tzinfo=UTC), "policy runs")
    (healed,) = [m for m in live.recorder.api("chat.update") if "Recovered" in text_of(m)]
    assert "were missed" in text_of(healed), "the run that completed healed it"


def test_a_run_with_no_room_is_skipped_and_its_card_offers_the_oldest_to_delete(live):
    live.ask("policy 12345 daily 02:30 UTC keep last 1", user=OWNER)
    for n in range(8):
        live.sim.add_backup(12345, age=timedelta(hours=n + 1), description=f"hand made {n}")
    at(live, datetime(2026, 12, 3, 2, 30, 5, tzinfo=UTC))
    assert live.sim.count("POST") == 0
    (card,) = posted(live, "was skipped")
    assert "the server already has 10 manual backups" in card["text"] and "The oldest are *#5002*" in card["text"]
    offered = [e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [e["action_id"] for e in offered][:3] == [ids.DELETE_REQUEST] * 3 and offered[0]["value"] == "5002"
    _response, key = live.press(offered[0], user=OWNER, channel=NOTIFY)
    confirm = live.reply(key)
    assert "Delete backup *#5002*" in text_of(confirm) or "#5002" in text_of(confirm)
    assert live.sim.count("DELETE") == 0, "a confirmation first, as any delete"


def test_a_create_the_api_refused_raises_a_card_and_the_next_completed_run_heals_it(live):
    live.ask("policy 12345 daily 02:30 UTC", user=OWNER)
    live.sim.fail_next(1, 400, method="POST")
    at(live, datetime(2026, 12, 3, 2, 30, 5, tzinfo=UTC))
    (card,) = posted(live, "FAILED")
    assert "*A scheduled backup of web-01 (12345) FAILED*" in card["text"]
    at(live, datetime(2026, 12, 4, 2, 30, 5, tzinfo=UTC))
    at(live, datetime(2026, 12, 4, 2, 41, tzinfo=UTC), "policy runs")
    (healed,) = [m for m in live.recorder.api("chat.update") if "Recovered" in text_of(m)]
    assert "FAILED" in text_of(healed)


def test_a_pause_skips_its_slots_without_calling_them_missed_and_ends_on_time(live):
    live.ask("policy 12345 daily 02:30 UTC", user=OWNER)
    reply, _ = live.ask("policy 12345 pause for 36h kernel upgrade", user=OWNER)
    assert "*Paused* until 2026-12-04 12:00 UTC" in text_of(reply) and "Reason: kernel upgrade" in text_of(reply)
    assert posted(live, "<@U0OWNER> paused it.")
    at(live, datetime(2026, 12, 3, 2, 30, 5, tzinfo=UTC))
    at(live, datetime(2026, 12, 4, 2, 30, 5, tzinfo=UTC))
    assert live.sim.count("POST") == 0 and not posted(live, "missed")
    at(live, datetime(2026, 12, 4, 12, 0, 1, tzinfo=UTC))
    assert len(posted(live, "Its pause ended on time.")) == 1
    at(live, datetime(2026, 12, 5, 2, 30, 5, tzinfo=UTC))
    assert live.sim.count("POST") == 1 and not posted(live, "missed")


def test_off_keeps_its_backups_and_stops_runs_and_prunes(live):
    live.ask("policy 12345 daily 02:30 UTC keep last 1", user=OWNER)
    at(live, datetime(2026, 12, 3, 2, 30, 5, tzinfo=UTC))
    reply, _ = live.ask("policy 12345 off", user=OWNER)
    assert "*Off*: no more runs" in text_of(reply)
    at(live, datetime(2026, 12, 3, 2, 41, tzinfo=UTC), "policy runs")
    at(live, datetime(2026, 12, 4, 2, 30, 5, tzinfo=UTC))
    assert live.sim.count("POST") == 1 and live.sim.count("DELETE") == 0


# --- daylight saving, through the Clock ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone_name", "at_time", "first_day", "expected"),
    [
        ("Europe/Berlin", "02:30", datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        ("Europe/Berlin", "02:30", datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        ("America/New_York", "01:30", datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
        ("America/New_York", "02:30", datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
        ("Australia/Lord_Howe", "02:15", datetime(2026, 10, 2, tzinfo=UTC), datetime(2026, 10, 3, 15, 30, tzinfo=UTC)),
        ("Australia/Lord_Howe", "01:45", datetime(2026, 4, 3, tzinfo=UTC), datetime(2026, 4, 4, 14, 45, tzinfo=UTC)),
        ("Asia/Seoul", "09:00", datetime(2026, 12, 2, tzinfo=UTC), datetime(2026, 12, 3, 0, 0, tzinfo=UTC)),
    ],
)
def test_across_a_daylight_saving_night_a_daily_run_happens_once_per_local_date(
    tmp_path, zone_name, at_time, first_day, expected
):
    clock = ManualClock(first_day)
    sim = world(clock)
    stack = LiveStack(tmp_path / "dst.db", sim, clock=clock)
    try:
        stack.ask(f"policy 12345 daily {at_time} {zone_name} keep last 3")
        moment = first_day
        while moment < first_day + timedelta(days=3):
            at(stack, moment)
            moment += timedelta(minutes=10)
        slots = sorted(datetime.fromtimestamp(r.slot, UTC) for r in stack.runtime.store.policy_runs_of(12345, 50))
        from bot.schedule import zone

        dates = [s.astimezone(zone(zone_name)).date() for s in slots]
        assert len(dates) == len(set(dates)) >= 3, "one run per local date"
        assert expected in slots
        assert sim.count("POST") == len(slots)
        assert {r.state for r in stack.runtime.store.policy_runs_of(12345, 50)} == {"running"}, "none missed"
    finally:
        stack.close()


# --- the form ---------------------------------------------------------------------------------------------


def test_the_form_previews_before_saving_and_refuses_bad_words_on_their_field(live):
    live.ask("policy 12345 daily 02:30 UTC keep last 2", user=OWNER)
    shown, key = live.ask("policy 12345", user=OWNER)
    live.press(button(shown, ids.POLICY_EDIT), user=OWNER, response_key=key)
    form = live.recorder.wait_for(lambda _r: live.recorder.api("views.open"))[-1]["view"]
    if isinstance(form, str):
        form = json.loads(form)
    assert form["callback_id"] == ids.POLICY_MODAL
    fields = {b["block_id"]: b["element"].get("initial_value") for b in form["blocks"] if b["type"] == "input"}
    assert fields == {ids.POLICY_SCHEDULE_BLOCK: "daily 02:30 UTC", ids.POLICY_KEEP_BLOCK: "last 2"}

    def submit(view, schedule, keep):
        values = {
            ids.POLICY_SCHEDULE_BLOCK: {ids.POLICY_SCHEDULE_ACTION: schedule},
            ids.POLICY_KEEP_BLOCK: {ids.POLICY_KEEP_ACTION: keep},
        }
        payload = view_submission_payload(user_id=OWNER, view=view, values=values)
        return live.post(urlencode({"payload": json.dumps(payload)}).encode())

    refused = submit(form, "daily 3am", "last 2")
    assert refused.json() == {
        "response_action": "errors",
        "errors": {ids.POLICY_SCHEDULE_BLOCK: "`3am` is not a time: write it on a 24-hour clock, like 02:30"},
    }
    working = submit(form, "every 6h from 01:00 Asia/Seoul", "last 3")
    assert working.json()["response_action"] == "update"
    update = live.recorder.wait_for(lambda _r: live.recorder.api("views.update"))[-1]
    preview = update["view"] if isinstance(update["view"], dict) else json.loads(update["view"])
    text = "\n".join(b["text"]["text"] for b in preview["blocks"] if b.get("text"))
    assert "*Preview* — nothing is saved yet." in text and "every 6 hours from 01:00 (Asia/Seoul)" in text
    assert "• 2026-12-04 01:00 Asia/Seoul" in text and "• 2026-12-04 07:00 Asia/Seoul" in text, "from the first 01:00"
    assert live.runtime.store.policy(12345).cadence == "daily", "not saved yet"
    saved = live.post(
        urlencode({"payload": json.dumps(view_submission_payload(user_id=OWNER, view=preview, values={}))}).encode()
    )
    assert saved.status_code == 200
    poll_until(lambda: live.runtime.store.policy(12345).cadence == "hourly")
    policy = live.runtime.store.policy(12345)
    assert (policy.every_hours, policy.at_time, policy.zone, policy.keep_last) == (6, "01:00", "Asia/Seoul", 3)
    said = live.recorder.wait_for(lambda _r: [m for m in live.recorder.responses(key) if "Policy saved" in text_of(m)])
    assert said


def test_status_of_one_server_and_the_home_tab_show_the_policy(live):
    live.ask("policy 12345 daily 02:30 UTC", user=OWNER)
    status, _ = live.ask("status 12345", user=OWNER)
    assert f"next run <!date^{stamp(2026, 12, 3, 2, 30)}^" in text_of(status)
    assert button(status, ids.POLICY_EDIT)["value"] == "12345"


# --- two bots, and a bot killed mid-create ---------------------------------------------------------------


def test_two_bots_on_one_postgres_take_each_slot_once(tmp_path, pg_url):
    clock = ManualClock(START)
    sim = world(clock)
    bg = Background()
    slack = bg.run(LoopbackSlack().start())
    first = LiveStack(pg_url, sim, clock=clock, slack=slack)
    second = LiveStack(pg_url, sim, clock=clock, slack=slack)
    try:
        first.ask("policy 12345 daily 02:30 UTC keep last 1")
        clock.now = datetime(2026, 12, 3, 2, 30, 5, tzinfo=UTC)
        for _ in range(3):
            bg.run(on_both(first, second, "policies"))
        assert sim.count("POST") == 1
        clock.now = datetime(2026, 12, 4, 2, 30, 5, tzinfo=UTC)
        for _ in range(3):
            bg.run(on_both(first, second, "policy runs"))
            bg.run(on_both(first, second, "policies"))
        assert sim.count("POST") == 2
        clock.now += timedelta(minutes=11)
        for _ in range(3):
            bg.run(on_both(first, second, "policy runs"))
        assert sim.count("DELETE") == 1, "the prune after the second run, once"
        assert len(first.runtime.store.policy_runs_of(12345, 10)) == 2
    finally:
        first.close()
        second.close()
        bg.run(slack.stop())
        bg.close()


def test_a_bot_killed_mid_create_is_followed_by_one_that_adopts_the_tagged_backup(tmp_path):
    serve = ServeProcess(tmp_path)
    live = None
    try:
        assert serve.command("policy 12345 daily 02:30 UTC", "set").status_code == 200
        assert "Policy saved" in text_of(serve.reply("set"))
        kill_when_handled(serve, "POST", "/backups/")
        with contextlib.suppress(httpx.RemoteProtocolError):  # killed before its ack was out, at times
            serve.command("policy 12345 run", "run")
        poll_until(lambda: serve.proc.poll() is not None, timeout=15)
        assert serve.sim.count("POST") == 1
        tagged = [b for b in serve.sim._backups.values() if TAG.search(b.description)]
        assert len(tagged) == 1, "the API created it; the bot never heard"
        live = restarted(serve, tmp_path)
        step(live, "policy runs")
        (run,) = live.runtime.store.policy_runs_of(12345, 5)
        assert (run.state, run.backup_id) == ("running", tagged[0].id), "adopted by its tag"
        assert "adopted" in run.detail
        step(live, "policy runs")
        assert serve.sim.count("POST") == 1, "never taken twice"
        (create,) = [r for r in audit_rows(serve.db) if r[0] == "create"]
        assert create[1] == "done" and "settled by looking after the bot stopped" in create[2], create
    finally:
        if live is not None:
            live.close()
        serve.close()


def test_the_home_tab_shows_each_servers_policy_and_opens_its_form(live):
    from test_home import open_home, press_on_home, published

    live.ask("policy 12345 daily 02:30 UTC", user=OWNER)
    home = published(live, OWNER, open_home(live, OWNER))
    block = next(b for b in home["blocks"] if b.get("block_id") == "server-12345")
    assert f"Policy: next run <!date^{stamp(2026, 12, 3, 2, 30)}^" in block["text"]["text"]
    menu = block["accessory"]
    assert menu["type"] == "overflow" and [o["value"] for o in menu["options"]] == ["create:12345", "policy:12345"]
    chosen = {**menu, "selected_option": menu["options"][1], "_block": "server-12345"}
    assert press_on_home(live, home, chosen, OWNER).status_code == 200
    form = live.recorder.wait_for(lambda _r: live.recorder.api("views.open"))[-1]["view"]
    assert form["callback_id"] == ids.POLICY_MODAL
    viewer_home = published(live, VIEWER, open_home(live, VIEWER))
    row = next(b for b in viewer_home["blocks"] if b.get("block_id") == "server-12345")
    assert "accessory" not in row, "a viewer may neither take a backup nor set the policy"


# --- what a hostile reading found ---------------------------------------------------------------------


def test_run_now_from_slack_says_what_it_took(live):
    live.ask("policy 12345 daily 02:30 UTC", user=OWNER)
    reply, _ = live.ask("policy 12345 run", user=OWNER)
    (made,) = policy_backups(live.sim)
    assert f":arrow_forward: A run of server *12345*'s policy, now: in progress. Backup *#{made.id}*" in text_of(reply)
    assert live.sim.count("POST") == 1


def test_a_change_of_kind_that_may_keep_fewer_needs_approval_too(live):
    live.ask("approvals 12345 on")
    live.ask("policy 12345 daily 02:00 keep last 4", user=OWNER)
    waiting, _ = live.ask("policy 12345 keep monthly 4", user=OWNER)
    assert "needs a second person's approval" in text_of(waiting)
    assert live.runtime.store.policy(12345).keep_last == 4
    fewer, _ = live.ask("policy 12345 keep last 5", user=OWNER)
    assert "Policy saved" in text_of(fewer)


def test_the_same_schedule_said_again_keeps_its_slots(live):
    live.ask("policy 12345 daily 02:30 UTC keep last 3", user=OWNER)
    live.runtime.ops._clock.now = datetime(2026, 12, 3, 2, 30, 10, tzinfo=UTC)  # the slot came; no round yet
    live.ask("policy 12345 daily 02:30 UTC keep last 4", user=OWNER)  # what the form sends for a new keep
    step(live)
    assert live.sim.count("POST") == 1, "the slot was not moved away by saying the schedule again"
    live.ask("policy 12345 daily 04:00 UTC", user=OWNER)
    at(live, datetime(2026, 12, 3, 4, 0, 5, tzinfo=UTC))
    assert live.sim.count("POST") == 2, "a new time counts from when it was set"


def test_an_off_policy_is_neither_resumed_nor_paused_back_on(live):
    live.ask("policy 12345 daily 02:30 UTC", user=OWNER)
    live.ask("policy 12345 off", user=OWNER)
    for words in ("resume", "pause for 2h", "run"):
        reply, _ = live.ask(f"policy 12345 {words}", user=OWNER)
        assert "backup policy is off, so nothing was changed" in text_of(reply), words
    at(live, datetime(2026, 12, 10, 2, 30, 5, tzinfo=UTC))
    assert live.sim.count("POST") == 0 and live.runtime.store.policy(12345).state == "off"
    live.ask("policy 12345 daily 02:30 UTC", user=OWNER)
    at(live, datetime(2026, 12, 10, 2, 31, tzinfo=UTC))
    assert not posted(live, "missed"), "its days off were not downtime"


def test_a_slot_inside_a_pause_is_not_run_late_when_no_round_saw_it(live):
    live.ask("policy 12345 daily 02:30 UTC", user=OWNER)
    reply, _ = live.ask("policy 12345 pause 3h", user=OWNER)  # `pause 3h`, said without `for`
    assert "*Paused* until 2026-12-03 03:00 UTC" in text_of(reply)
    at(live, datetime(2026, 12, 3, 1, 0, tzinfo=UTC))
    at(live, datetime(2026, 12, 3, 3, 10, tzinfo=UTC))  # the next round comes after the pause ended
    assert live.sim.count("POST") == 0 and not posted(live, "missed")
    at(live, datetime(2026, 12, 4, 2, 30, 5, tzinfo=UTC))
    assert live.sim.count("POST") == 1


def test_a_description_ending_in_a_policy_tag_does_not_make_a_backup_the_policys(live):
    live.ask("policy 12345 daily 02:30 UTC keep last 1", user=OWNER)
    at(live, datetime(2026, 12, 3, 2, 30, 5, tzinfo=UTC))
    (first,) = live.runtime.store.policy_runs_of(12345, 1)
    live.ask(f"create 12345 DB before migration {first.tag}", user=OWNER)
    hand_made = max(b.id for b in live.sim._backups.values())
    at(live, datetime(2026, 12, 3, 2, 41, tzinfo=UTC), "policy runs")
    at(live, datetime(2026, 12, 4, 2, 30, 5, tzinfo=UTC))
    at(live, datetime(2026, 12, 4, 2, 41, tzinfo=UTC), "policy runs")
    assert hand_made in live.sim._backups, "typed by a person: never pruned"
    assert first.backup_id not in live.sim._backups, "the policy's own was"


def test_a_forged_form_saves_nothing(live):
    live.ask("policy 12345 daily 02:30 UTC keep last 2", user=OWNER)
    forged = {
        "type": "modal",
        "callback_id": ids.POLICY_PREVIEW,
        "private_metadata": json.dumps({"s": 12345, "ch": None, "ru": None, "typed": ["every 5h", "last -3"]}),
        "blocks": [],
    }
    payload = view_submission_payload(user_id=OWNER, view=forged, values={})
    assert live.post(urlencode({"payload": json.dumps(payload)}).encode()).status_code == 200
    policy = live.runtime.store.policy(12345)
    assert (policy.cadence, policy.keep_last) == ("daily", 2)


def test_a_bound_server_s_policy_is_changed_only_from_its_channels(live):
    live.ask("policy 12345 daily 02:30 UTC", user=OWNER)
    live.ask("channels 12345 add <#C0PROD01|prod-ops>")
    for words in ("keep last 1", "off", "pause for 2h", "resume"):
        reply, _ = live.ask(f"policy 12345 {words}", user=OWNER)
        assert "<#C0PROD01>" in text_of(reply), words
    reply, _ = live.ask("policy 12345", user=OWNER)
    assert "*Backup policy of" in text_of(reply), "reading stays allowed"
    reply, _ = live.ask("policy 12345 keep last 2", user=OWNER, channel="C0PROD01")
    assert "Policy saved" in text_of(reply)


def test_the_shell_cannot_lower_a_keep_under_the_two_person_rule(tmp_path):
    from test_cli import run

    from bot.sim.fake_api import start_simulator_server

    bg = Background()
    sim = BackupSimulator(seed=True)
    runner, url = bg.run(start_simulator_server(sim))
    env = {"VPS_API_URL": url, "VPS_API_TOKEN": "t"}
    try:
        assert run("approvals", "12345", "on", tmp_path=tmp_path, env=env).returncode == 0
        set_it = run("policy", "12345", "daily", "02:00", "keep", "last", "3", tmp_path=tmp_path, env=env)
        assert set_it.returncode == 0
        lower = run("policy", "12345", "keep", "last", "1", tmp_path=tmp_path, env=env)
        assert lower.returncode == 2 and "ask for a lower keep in Slack" in lower.stderr
        assert "nothing was changed" in lower.stderr
        shown = run("policy", "12345", tmp_path=tmp_path, env=env)
        assert shown.returncode == 0 and "keep last 3" in shown.stdout
    finally:
        bg.run(runner.cleanup())
        bg.close()
