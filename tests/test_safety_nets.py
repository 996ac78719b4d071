"""The safety nets, end to end: signed requests to the app, the simulator, the loopback Slack, a real store.

A safety backup before a restore, the undo window for deletes, room at the
10-backup limit, and what a restore undoes — each counted at the API: what
was sent, how many times, in what order.
"""

import asyncio
import json
import logging
import re
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import NOTIFY, Background, LiveStack, ManualClock, button, buttons, poll_until, text_of

from bot.sim.fake_api import BackupSimulator
from bot.sim.slack_loopback import LoopbackSlack
from bot.slack import ids
from bot.store import SqliteStore

OWNER, OWNER2, OPERATOR, VIEWER = "U0OWNER", "U0OWNER2", "U0OPERATOR", "U0VIEWER"


def with_roles(stack: LiveStack, server: int = 12345) -> LiveStack:
    for user, role in ((OWNER, "owner"), (OWNER2, "owner"), (OPERATOR, "operator"), (VIEWER, "viewer")):
        stack.grant(user, server, role)
    return stack


@pytest.fixture
def nets(tmp_path, sim):
    live = with_roles(LiveStack(tmp_path / "nets.db", sim, poll_seconds=0.05, delete_grace_seconds=30))
    yield live
    live.close()


def writes(sim: BackupSimulator) -> list[tuple[str, str]]:
    """The API's write calls, in order."""
    return [(m, p) for m, p in sim.requests if m in ("POST", "DELETE")]


def audit(stack: LiveStack) -> list[tuple[str, str, str, str]]:
    store = SqliteStore(str(stack.db_path))
    try:
        return [(e.user_id, e.action, e.outcome, e.detail or "") for e in reversed(store.audit_entries(200))]
    finally:
        store.close()


# --- a safety backup before a restore ----------------------------------------------------


def restore_form(stack: LiveStack, backup: str = "5023", user: str = OWNER) -> tuple[dict, str, dict]:
    """`/backup restore`, then Restore… pressed: (the confirmation, the key replies go to, the form)."""
    confirmation, _ = stack.ask(f"restore {backup}", user=user)
    _response, key = stack.press(button(confirmation, ids.OPEN_RESTORE), user=user)
    view = stack.recorder.wait_for(lambda _r: stack.recorder.api("views.open"))[-1]["view"]
    return confirmation, key, view


def safety_backup_of(reply: dict) -> int:
    """The safety backup's ID, as the requester's reply names it."""
    return int(re.search(r"Safety backup \*#(\d+)\*", text_of(reply)).group(1))


def safety_box(view: dict) -> dict:
    return next(b for b in view["blocks"] if b.get("block_id") == ids.RESTORE_SAFETY_BLOCK)


def test_the_restore_is_sent_only_after_the_safety_backup_completed(nets):
    _conf, key, view = restore_form(nets)
    box = safety_box(view)
    assert box["element"]["initial_options"][0]["value"] == ids.SAFETY_OPTION, "ticked by default"
    assert box["element"]["options"][0]["text"]["text"] == "First back up web-server-01's current state"
    assert nets.submit(view, "web-server-01", user=OWNER, safety=None).status_code == 200
    started = nets.reply(key)
    safety_id = safety_backup_of(started)
    assert f"Safety backup *#{safety_id}* of the current state has started." in text_of(started)
    assert f"The restore is sent once *#{safety_id}* is complete." in text_of(started)
    assert writes(nets.sim) == [("POST", "/api/v1/backups/")], "the safety backup only"
    time.sleep(0.3)  # several rounds of the loop while it runs
    assert nets.sim.restores == []
    nets.sim.finish(safety_id)
    poll_until(lambda: nets.sim.restores)
    restored = nets.reply(key, 2)
    assert f"Safety backup *#{safety_id}* is complete." in text_of(restored)
    assert "The restore has started." in text_of(restored) and restored["replace_original"] is True
    time.sleep(0.3)
    assert writes(nets.sim) == [("POST", "/api/v1/backups/"), ("POST", "/api/v1/servers/12345/restore/")]
    assert nets.sim.restores == [(12345, 5023)], "exactly one restore"
    announced = [m["text"] for m in nets.recorder.api("chat.postMessage") if m["channel"] == NOTIFY]
    assert any(f"first a safety backup *#{safety_id}*" in t for t in announced), announced
    assert any(f"after safety backup *#{safety_id}* completed" in t for t in announced), announced
    rows = audit(nets)
    safety_rows = [r for r in rows if r[:3] == (OWNER, "create", "done")]
    assert len(safety_rows) == 1 and safety_rows[0][3].startswith("Safety backup before restoring from #5023 [restore ")
    assert rows[-1][:3] == (OWNER, "restore", "done") and f"after safety backup {safety_id}" in rows[-1][3]


def test_a_failed_safety_backup_sends_no_restore_and_offers_one_without(nets):
    _conf, key, view = restore_form(nets)
    nets.sim.fail_next(1, 400, method="POST")
    nets.submit(view, "web-server-01", user=OWNER, safety=True)
    stopped = nets.reply(key)
    assert "*Nothing was restored* on *web-server-01* (12345) from backup *#5023*" in text_of(stopped)
    assert "the safety backup was not made (the backup API refused it:" in text_of(stopped)
    without = button(stopped, ids.RESTORE_WITHOUT_SAFETY)
    assert nets.sim.restores == [] and nets.sim.count("POST", "/api/v1/servers") == 0
    assert audit(nets)[-1][:3] == (OWNER, "restore", "failed")
    _r, again = nets.press(without, user=OWNER)
    fresh = nets.reply(again)
    assert "*without* a safety backup" in text_of(fresh), "a fresh confirmation first"
    _r, form_key = nets.press(button(fresh, ids.OPEN_RESTORE), user=OWNER)
    view = nets.recorder.wait_for(lambda _r: nets.recorder.api("views.open")[1:])[-1]["view"]
    assert "initial_options" not in safety_box(view)["element"], "unticked this time"
    nets.submit(view, "web-server-01", user=OWNER, safety=None)
    assert "Restore of *web-server-01* (12345) from backup *#5023* has started." in text_of(nets.reply(form_key))
    assert nets.sim.restores == [(12345, 5023)]


def test_a_safety_backup_that_ends_failed_stops_the_restore(nets):
    _conf, key, view = restore_form(nets)
    nets.submit(view, "12345", user=OWNER, safety=True)
    safety_id = safety_backup_of(nets.reply(key))
    nets.sim.finish(safety_id, status="failed")
    stopped = nets.reply(key, 2)
    assert f"safety backup #{safety_id} ended failed" in text_of(stopped)
    assert button(stopped, ids.RESTORE_WITHOUT_SAFETY)
    time.sleep(0.3)
    assert nets.sim.restores == []
    told = [m["text"] for m in nets.recorder.api("chat.postMessage")]
    assert any("was *not* sent" in t for t in told), told
    assert any(f"*Backup #{safety_id} of web-server-01 (12345) FAILED*" in t for t in told), "its own alert too"


@pytest.mark.parametrize("status", ["error", "cancelled", "partial"])
def test_a_safety_backup_that_ends_in_any_state_but_completed_stops_the_restore(nets, status):
    """Not only `failed`: whatever else the API says a finished backup is, it is not a safety net."""
    _conf, key, view = restore_form(nets)
    nets.submit(view, "web-server-01", user=OWNER, safety=True)
    safety_id = safety_backup_of(nets.reply(key))
    nets.sim.finish(safety_id, status=status)
    stopped = text_of(nets.reply(key, 2))
    assert "*Nothing was restored* on *web-server-01* (12345)" in stopped
    assert f"safety backup #{safety_id} ended {status}" in stopped
    time.sleep(0.3)  # several rounds of the loop after it ended
    assert nets.sim.restores == [] and nets.sim.count("POST", "/api/v1/servers") == 0
    assert audit(nets)[-1][:3] == (OWNER, "restore", "failed")


def test_no_room_for_a_safety_backup_is_said_in_the_form_and_nothing_is_restored(nets):
    nets.grant(OWNER, 12346, "owner")
    for n in range(2):
        nets.sim.add_backup(12346, description=f"filler {n}")
    _conf, key, view = restore_form(nets, backup="5031")
    warning = text_of({"blocks": view["blocks"]})
    assert "already has 10 of 10 manual backups: there is no room for a safety backup" in warning
    nets.submit(view, "12346", user=OWNER, safety=True)
    stopped = nets.reply(key)
    assert "there is no room for a safety backup: server 12346 already has 10 manual backups" in text_of(stopped)
    assert button(stopped, ids.RESTORE_WITHOUT_SAFETY)
    assert nets.sim.restores == []


def test_a_restore_waiting_on_its_safety_backup_survives_a_restart_and_is_sent_once(tmp_path):
    bg = Background()
    slack = bg.run(LoopbackSlack().start())
    sim = BackupSimulator(completion_seconds=3600)
    db = tmp_path / "chain.db"
    first = with_roles(LiveStack(db, sim, slack=slack, poll_seconds=0.05))
    try:
        _conf, key, view = restore_form(first)
        first.submit(view, "web-server-01", user=OWNER, safety=True)
        safety_id = safety_backup_of(first.reply(key))
    finally:
        first.close()
    sim.finish(safety_id)  # it completes while the bot is down
    second = LiveStack(db, sim, slack=slack, poll_seconds=0.05)
    third = LiveStack(db, sim, slack=slack, poll_seconds=0.05)  # and two bots now share the store
    try:
        poll_until(lambda: sim.restores)
        time.sleep(0.5)
        assert sim.restores == [(12345, 5023)]
        assert "The restore has started." in text_of(second.reply(key, 2))
    finally:
        third.close()
        second.close()
        bg.run(slack.stop())
        bg.close()


def test_under_the_two_person_rule_the_safety_backup_comes_after_the_approval(nets):
    assert "now *on*" in text_of(nets.ask("approvals 12345 on")[0])
    _conf, key, view = restore_form(nets)
    nets.submit(view, "web-server-01", user=OWNER, safety=True)
    assert "needs a second person's approval" in text_of(nets.reply(key))
    assert writes(nets.sim) == [], "nothing before the approval"
    card = nets.recorder.wait_for(
        lambda _r: [m for m in nets.recorder.api("chat.postMessage") if "Approval needed" in m["text"]]
    )[-1]
    nets.press(button(card, ids.APPROVE), user=OWNER2, channel=NOTIFY)
    started = nets.reply(key, 2)
    assert "(approved by <@U0OWNER2>)" in text_of(started)
    assert writes(nets.sim) == [("POST", "/api/v1/backups/")]
    nets.sim.finish(safety_backup_of(started))
    poll_until(lambda: nets.sim.restores)
    assert nets.sim.restores == [(12345, 5023)]
    restored = poll_until(lambda: [e for e in audit(nets) if e[1:3] == ("restore", "done")])
    assert "approved by U0OWNER2" in restored[-1][3]


# --- what a restore undoes -----------------------------------------------------------------


def test_the_restore_confirmation_says_what_it_undoes(tmp_path):
    now = datetime.now(UTC)
    sim = BackupSimulator(completion_seconds=3600, seed=False)
    sim.add_server(7, "app-7")
    old = sim.add_backup(7, age=timedelta(days=3), description="old")
    sim.add_backup(7, age=timedelta(hours=2, minutes=5), description="newer")
    newest = sim.add_backup(7, backup_type="automatic", age=timedelta(minutes=30))
    sim.add_backup(8, age=timedelta(minutes=1))  # another server's backup is not counted
    live = LiveStack(tmp_path / "undoes.db", sim)
    try:
        text = text_of(live.ask(f"restore {old}")[0])
        assert f"Backup *#{old}* was taken <!date^{int((now - timedelta(days=3)).timestamp())}" in text
        assert "(3 days ago)." in text
        assert f"2 newer backups of *app-7* (7) exist; the newest is *#{newest}*, 30 minutes ago." in text
        assert "No newer backup of *app-7* (7) exists." in text_of(live.ask(f"restore {newest}")[0])
    finally:
        live.close()


# --- the undo window for deletes ----------------------------------------------------------


def confirm_delete(stack: LiveStack, user: str = OWNER, backup: str = "5023") -> tuple[dict, str]:
    confirmation, _ = stack.ask(f"delete {backup}", user=user)
    _response, key = stack.press(button(confirmation, ids.CONFIRM_DELETE), user=user)
    return stack.reply(key), key


def window_stack(tmp_path, sim, grace: float, **kwargs) -> LiveStack:
    return with_roles(LiveStack(tmp_path / "window.db", sim, delete_grace_seconds=grace, **kwargs))


def send_due(stack: LiveStack) -> int:
    """What the background loop does every second: send the deletes whose window has ended."""
    return stack.run(stack.runtime.background.run_chore("due deletes"))


def test_no_delete_before_the_window_ends_then_exactly_one(tmp_path, sim):
    clock = ManualClock()
    live = window_stack(tmp_path, sim, 30, clock=clock)
    try:
        waiting, key = confirm_delete(live)
        text = text_of(waiting)
        due = int((clock.now + timedelta(seconds=30)).timestamp())
        assert f"Backup *#5023* of *web-server-01* (12345) will be deleted at <!date^{due}^" in text
        assert "(in 30 seconds). Until then it can be undone." in text
        assert button(waiting, ids.UNDO_DELETE)["text"]["text"] == "Undo"
        clock.now += timedelta(seconds=29)
        assert send_due(live) == 0 and sim.count("DELETE") == 0, "nothing inside the window"
        clock.now += timedelta(seconds=1)
        deleted = live.reply(key, 2)  # the loop's own chore sends it within its next tick
        assert "Deleted backup *#5023* of *web-server-01* (12345): its undo window ended." in text_of(deleted)
        assert send_due(live) == 0, "and never again"
        assert sim.count("DELETE") == 1
        announced = live.recorder.wait_for(
            lambda _r: [
                m["text"] for m in live.recorder.api("chat.postMessage") if "deleted backup *#5023*" in m["text"]
            ]
        )
        assert len(announced) == 1
        assert audit(live)[-1][:4] == (OWNER, "delete", "done", "after its undo window")
    finally:
        live.close()


def test_undo_sends_nothing_and_is_audited_cancelled(tmp_path, sim):
    clock = ManualClock()
    live = window_stack(tmp_path, sim, 30, clock=clock)
    try:
        waiting, key = confirm_delete(live)
        undo = button(waiting, ids.UNDO_DELETE)
        live.press(undo, user=VIEWER, response_key=key)
        assert "needs the *owner* role" in text_of(live.reply(key, 2)), "a viewer may not undo"
        _r, stranger = live.press(undo, user="U0STRANGER")
        told = text_of(live.reply(stranger))
        assert told == ":grey_question: I don't know this delete. Nothing was changed."
        assert "12345" not in told and "web-server" not in told, "no role on the server: nothing learned of it"
        live.press(undo, user=OWNER2, response_key=key)
        undone = live.reply(key, 3)
        assert "Undone by <@U0OWNER2>: backup *#5023* of *web-server-01* (12345) is kept." in text_of(undone)
        live.press(undo, user=OWNER, response_key=key)
        assert "was already undone by <@U0OWNER2>" in text_of(live.reply(key, 4))
        clock.now += timedelta(minutes=5)
        assert send_due(live) == 0 and sim.count("DELETE") == 0
        rows = audit(live)
        assert (OWNER2, "delete", "cancelled", "undone in its window (asked by U0OWNER)") in rows
        assert [r[:3] for r in rows if r[0] == VIEWER] == [(VIEWER, "delete", "denied")]
        assert [r[:3] for r in rows if r[0] == "U0STRANGER"] == [("U0STRANGER", "delete", "denied")]
    finally:
        live.close()


def test_undo_after_the_delete_went_out_is_answered_plainly(tmp_path, sim):
    live = window_stack(tmp_path, sim, 0.2)
    try:
        waiting, key = confirm_delete(live)
        live.reply(key, 2)
        live.press(button(waiting, ids.UNDO_DELETE), user=OWNER, response_key=key)
        assert "Too late to undo: backup *#5023* was deleted when its window ended." in text_of(live.reply(key, 3))
        assert sim.count("DELETE") == 1
    finally:
        live.close()


def test_undo_while_the_delete_is_being_sent_is_refused(tmp_path, sim):
    """The window ended and the DELETE is on its way (the API is slow to answer): too late to undo."""
    clock = ManualClock()
    live = window_stack(tmp_path, sim, 30, clock=clock, api_options={"timeout": 10.0})
    try:
        waiting, key = confirm_delete(live)
        sim.hang_next(1)  # the DELETE hangs until the client's timeout (10 s)
        clock.now += timedelta(seconds=30)
        poll_until(lambda: sim.count("DELETE") == 1)
        live.press(button(waiting, ids.UNDO_DELETE), user=OWNER, response_key=key)
        told = live.recorder.wait_for(
            lambda _r: [t for t in map(text_of, live.recorder.responses(key)[1:]) if "undo" in t.lower()]
        )
        assert "Too late to undo" in told[0], told
        assert not any("Undone by" in text_of(r) for r in live.recorder.responses(key))
        assert [r[:3] for r in audit(live) if r[2] == "cancelled"] == [], "not audited as undone"
    finally:
        live.close()


def test_undo_after_the_time_the_reply_named_is_refused(tmp_path, sim):
    """PRODUCT.md: "an Undo pressed after the time the reply named is refused (it is being deleted)"."""
    clock = ManualClock()
    live = window_stack(tmp_path, sim, 30, clock=clock, api_options={"timeout": 10.0})
    try:
        _first, _first_key = confirm_delete(live, backup="5022")
        clock.now += timedelta(seconds=10)
        waiting, key = confirm_delete(live, backup="5023")  # due 10 s after the first
        sim.hang_next(1)
        clock.now += timedelta(seconds=21)  # the first is due: its DELETE hangs, and the loop with it
        poll_until(lambda: sim.count("DELETE") == 1)
        clock.now += timedelta(seconds=10)  # the second's time has come
        live.press(button(waiting, ids.UNDO_DELETE), user=OWNER, response_key=key)
        answer = text_of(live.reply(key, 2))
        assert "Undone by" not in answer and ("Too late to undo" in answer or "no longer be undone" in answer), answer
    finally:
        live.close()


def test_deletes_due_together_are_sent_together_even_if_one_hangs(tmp_path, sim):
    """PRODUCT.md: "deletes due together are sent within seconds of their time, not one after another"."""
    clock = ManualClock()
    live = window_stack(tmp_path, sim, 30, clock=clock, api_options={"timeout": 10.0})
    try:
        confirm_delete(live, backup="5022")
        confirm_delete(live, backup="5023")
        sim.hang_next(1)  # whichever goes first hangs until the client's timeout (10 s)
        clock.now += timedelta(seconds=30)
        poll_until(lambda: sim.count("DELETE") == 2, timeout=2)
    finally:
        live.close()


def confirmed_then_stopped(tmp_path, sim, slack, clock) -> str:
    """A delete confirmed (30 s window) through a bot that then stops; returns the reply's response_url key."""
    first = window_stack(tmp_path, sim, 30, slack=slack, clock=clock)
    try:
        _waiting, key = confirm_delete(first)
    finally:
        first.close()
    return key


def test_a_restart_inside_the_window_still_deletes_exactly_once(tmp_path):
    bg = Background()
    slack = bg.run(LoopbackSlack().start())
    sim = BackupSimulator(completion_seconds=3600)
    clock = ManualClock()
    key = confirmed_then_stopped(tmp_path, sim, slack, clock)
    assert sim.count("DELETE") == 0, "stopping does not send it early"
    clock.now += timedelta(seconds=10)
    second = LiveStack(tmp_path / "window.db", sim, slack=slack, delete_grace_seconds=30, clock=clock)
    third = LiveStack(tmp_path / "window.db", sim, slack=slack, delete_grace_seconds=30, clock=clock)
    try:
        time.sleep(0.3)  # three ticks of each bot's chores, inside the window
        assert sim.count("DELETE") == 0, "restarted inside the window: not sent early either"
        clock.now += timedelta(seconds=20)
        assert "Deleted backup *#5023*" in text_of(second.reply(key, 2))
        time.sleep(0.3)
        assert sim.count("DELETE") == 1, "two bots on one store: one DELETE"
    finally:
        third.close()
        second.close()
        bg.run(slack.stop())
        bg.close()


def test_a_window_that_ended_while_the_bot_was_down_is_sent_when_it_is_back(tmp_path):
    bg = Background()
    slack = bg.run(LoopbackSlack().start())
    sim = BackupSimulator(completion_seconds=3600)
    clock = ManualClock()
    key = confirmed_then_stopped(tmp_path, sim, slack, clock)
    clock.now += timedelta(minutes=5)  # the bot was down while the window ended
    second = LiveStack(tmp_path / "window.db", sim, slack=slack, clock=clock)
    try:
        assert "Deleted backup *#5023*" in text_of(second.reply(key, 2))
        assert sim.count("DELETE") == 1
    finally:
        second.close()
        bg.run(slack.stop())
        bg.close()


# --- room at the limit -------------------------------------------------------------------------


@pytest.fixture
def full(tmp_path, sim):
    for n in range(2):
        sim.add_backup(12346, description=f"filler {n}")
    live = with_roles(LiveStack(tmp_path / "full.db", sim), server=12346)
    yield live
    live.close()


def test_make_room_deletes_the_oldest_then_creates_once(full):
    refused, _ = full.ask("create 12346 Before the <big> migration", user=OWNER)
    text = text_of(refused)
    assert "Server *12346* already has *10 of 10* manual backups" in text
    assert "The oldest manual one is *#5024*, taken <!date^" in text and "“Before schema migration 1”" in text
    make_room = button(refused, ids.MAKE_ROOM)
    assert make_room["text"]["text"] == "Delete #5024 and create"
    _r, key = full.press(make_room, user=OWNER)
    confirmation = full.reply(key)
    assert "will be deleted *permanently* (this cannot be undone)" in text_of(confirmation)
    assert "a new backup “Before the &lt;big&gt; migration”" in text_of(confirmation)
    assert full.sim.count("DELETE") == 0
    confirm = button(confirmation, ids.CONFIRM_MAKE_ROOM)
    assert "cannot be undone" in confirm["confirm"]["text"]["text"]
    _r, done_key = full.press(confirm, user=OWNER)
    made = text_of(full.reply(done_key))
    assert "Deleted backup *#5024* of *db-server-01* (12346) to make room." in made
    assert "has started. I'll update this message when it is done." in made
    full.press(confirm, user=OWNER)  # a second press does nothing more
    time.sleep(0.3)
    assert [w for w in writes(full.sim) if w != ("POST", "/api/v1/backups/")][:1] == [
        ("DELETE", "/api/v1/backups/5024/")
    ]
    assert writes(full.sim)[-2:] == [("DELETE", "/api/v1/backups/5024/"), ("POST", "/api/v1/backups/")]
    assert full.sim.count("DELETE") == 1 and full.sim.count("POST", "/api/v1/backups/") == 2
    store = SqliteStore(str(full.db_path))
    try:
        assert [f.server_id for f in store.following()] == [12346], "the new backup is followed"
    finally:
        store.close()


def test_an_operator_is_told_who_can_make_room_and_nothing_is_sent(full):
    refused, _ = full.ask("create 12346", user=OPERATOR)
    assert "An owner of the server or an admin can make room" in text_of(refused)
    assert not [b for b in buttons(refused) if b["action_id"] == ids.MAKE_ROOM]
    forged = {"action_id": ids.MAKE_ROOM, "value": json.dumps({"s": 12346, "b": 5024, "d": ""})}
    _r, key = full.press(forged, user=OPERATOR)
    assert "needs the *owner* role" in text_of(full.reply(key))
    assert full.sim.count("DELETE") == 0


def test_under_the_two_person_rule_making_room_is_not_one_step(full):
    """The rule turned on while a make-room button and its confirmation are still on screen: neither deletes."""
    refused, _ = full.ask("create 12346", user=OWNER)
    make_room = button(refused, ids.MAKE_ROOM)
    _r, key = full.press(make_room, user=OWNER)
    confirm = button(full.reply(key), ids.CONFIRM_MAKE_ROOM)
    assert "now *on*" in text_of(full.ask("approvals 12346 on")[0])
    ruled, _ = full.ask("create 12346", user=OWNER)
    assert "under the two-person rule: delete it with `/backup delete 5024`" in text_of(ruled)
    assert not [b for b in buttons(ruled) if b["action_id"] == ids.MAKE_ROOM], "no one-step button any more"
    for pressed in (make_room, confirm):
        _r, key = full.press(pressed, user=OWNER)
        assert "is under the two-person rule, so making room is not one step" in text_of(full.reply(key))
    assert full.sim.count("DELETE") == 0 and full.sim.count("POST", "/api/v1/backups/") == 2, "two refused creates"


def test_if_the_delete_fails_nothing_is_created(full):
    refused, _ = full.ask("create 12346", user=OWNER)
    _r, key = full.press(button(refused, ids.MAKE_ROOM), user=OWNER)
    confirm = button(full.reply(key), ids.CONFIRM_MAKE_ROOM)
    full.sim.fail_next(1, 500, method="DELETE")
    posts_before = full.sim.count("POST")
    _r, done_key = full.press(confirm, user=OWNER)
    assert "backup API" in text_of(full.reply(done_key))
    assert full.sim.count("POST") == posts_before, "no create after a failed delete"


def test_two_rounds_racing_on_one_chain_send_one_restore(tmp_path, sim):
    live = with_roles(LiveStack(tmp_path / "race.db", sim))  # its own rounds are an hour apart
    try:
        _conf, key, view = restore_form(live)
        live.submit(view, "web-server-01", user=OWNER, safety=True)
        safety_id = safety_backup_of(live.reply(key))
        sim.finish(safety_id)
        (chain,) = live.runtime.store.waiting_chains()
        completed = next(b for b in live.run(live.runtime.api.list_backups(12345)) if b.id == safety_id)
        ops = live.runtime.ops

        async def race():
            return await asyncio.gather(ops.advance_chain(chain, completed), ops.advance_chain(chain, completed))

        steps = live.run(race())
        assert sorted(step is None for step in steps) == [False, True]
        assert sim.restores == [(12345, 5023)]
    finally:
        live.close()


def test_a_window_that_ends_while_the_store_is_locked_is_sent_once_when_it_is_free(tmp_path, sim, caplog):
    caplog.set_level(logging.INFO, logger="bot.chores")
    clock = ManualClock()
    live = window_stack(tmp_path, sim, 30, clock=clock)
    try:
        _waiting, key = confirm_delete(live)
        lock = sqlite3.connect(str(live.db_path), isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # another process holds the store as the window ends
        clock.now += timedelta(seconds=31)
        poll_until(lambda: caplog.text.count("a background chore waits for the store") >= 2)  # two ticks in vain
        assert sim.count("DELETE") == 0
        assert "chore failed" not in caplog.text
        lock.execute("ROLLBACK")
        lock.close()
        assert "Deleted backup *#5023*" in text_of(live.reply(key, 2))
        assert sim.count("DELETE") == 1
    finally:
        live.close()
